package endpoint

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/kilnhq/kiln/webhooks/signature"
)

// Collection holds the endpoints.
const Collection = "webhook_endpoints"

// callTimeout bounds every MongoDB call.
const callTimeout = 10 * time.Second

// ErrNotFound is returned for an id no endpoint has.
var ErrNotFound = errors.New("webhook endpoint not found")

// Store reads and writes endpoints. Endpoints are few: List scans them all.
type Store struct {
	coll *mongo.Collection
	now  func() time.Time
	// rotating serializes this process's rotations: FerretDB v1 applies
	// concurrent updates of a document last-writer-wins, even conditional
	// ones, so the compare-and-set of Rotate is exact only on MongoDB.
	rotating sync.Mutex
}

// NewStore returns the store on db.
func NewStore(db *mongo.Database) *Store {
	return &Store{coll: db.Collection(Collection), now: time.Now}
}

// Create stores a new endpoint with a fresh secret, returned once.
func (s *Store) Create(ctx context.Context, in Input) (*Endpoint, string, error) {
	now := s.now().UnixMilli()
	secret := signature.NewSecret()
	e := &Endpoint{ID: "ep_" + ulid.Make().String(), URL: *in.URL, Filters: []string{},
		Secrets: []Secret{{Value: secret}}, CreatedAt: now, UpdatedAt: now}
	if in.Filters != nil {
		e.Filters = *in.Filters
	}
	if in.Description != nil {
		e.Description = *in.Description
	}
	if in.Disabled != nil {
		e.Disabled = *in.Disabled
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := s.coll.InsertOne(ctx, e); err != nil {
		return nil, "", fmt.Errorf("create endpoint: %w", err)
	}
	return e, secret, nil
}

// Get returns one endpoint.
func (s *Store) Get(ctx context.Context, id string) (*Endpoint, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var e Endpoint
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&e)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get endpoint %s: %w", id, err)
	}
	return &e, nil
}

// List returns every endpoint, oldest first.
func (s *Store) List(ctx context.Context) ([]*Endpoint, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	cur, err := s.coll.Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	out := []*Endpoint{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	slices.SortStableFunc(out, func(a, b *Endpoint) int { return cmp.Compare(a.CreatedAt, b.CreatedAt) })
	return out, nil
}

// Update applies a change; enabling an endpoint clears why it was disabled
// and its failing run, and so does a new URL (the failures were the old
// URL's: the disable-after-failing clock starts again).
func (s *Store) Update(ctx context.Context, id string, in Input) (*Endpoint, error) {
	set := bson.D{{Key: "updatedAt", Value: s.now().UnixMilli()}}
	if in.URL != nil {
		set = append(set, bson.E{Key: "url", Value: *in.URL}, bson.E{Key: "failingSince", Value: int64(0)})
	}
	if in.Filters != nil {
		set = append(set, bson.E{Key: "filters", Value: *in.Filters})
	}
	if in.Description != nil {
		set = append(set, bson.E{Key: "description", Value: *in.Description})
	}
	if in.Disabled != nil {
		set = append(set, bson.E{Key: "disabled", Value: *in.Disabled})
		if !*in.Disabled {
			set = append(set, bson.E{Key: "disabledReason", Value: ""})
			if in.URL == nil {
				set = append(set, bson.E{Key: "failingSince", Value: int64(0)})
			}
		}
	}
	if err := s.update(ctx, id, bson.D{{Key: "$set", Value: set}}); err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// Disable disables an endpoint with the reason.
func (s *Store) Disable(ctx context.Context, id, reason string) error {
	return s.update(ctx, id, bson.D{{Key: "$set", Value: bson.D{
		{Key: "disabled", Value: true}, {Key: "disabledReason", Value: reason},
		{Key: "updatedAt", Value: s.now().UnixMilli()},
	}}})
}

// SetFailingSince records the start of a failing run (0 ends it).
func (s *Store) SetFailingSince(ctx context.Context, id string, since int64) error {
	return s.update(ctx, id, bson.D{{Key: "$set", Value: bson.D{{Key: "failingSince", Value: since}}}})
}

// rotateTries bounds Rotate's compare-and-set attempts.
const rotateTries = 10

// Rotate makes a new current secret; the previous ones keep signing for
// overlap. It returns the new secret, shown once, and the endpoint. The
// write is a compare-and-set on updatedAt, retried on a concurrent change:
// two rotations at once both take effect (one after the other), where a
// plain write lost the first one's secret.
func (s *Store) Rotate(ctx context.Context, id string, overlap time.Duration) (*Endpoint, string, error) {
	s.rotating.Lock()
	defer s.rotating.Unlock()
	secret := signature.NewSecret()
	for range rotateTries {
		e, err := s.Get(ctx, id)
		if err != nil {
			return nil, "", err
		}
		now := s.now()
		secrets := []Secret{{Value: secret}}
		for _, old := range e.Secrets {
			switch {
			case old.ExpiresAt == 0:
				secrets = append(secrets, Secret{Value: old.Value, ExpiresAt: now.Add(overlap).UnixMilli()})
			case old.ExpiresAt > now.UnixMilli():
				secrets = append(secrets, old)
			}
		}
		// A later updatedAt, so that a rotation that read e before this
		// write no longer matches.
		updated := max(now.UnixMilli(), e.UpdatedAt+1)
		ok, err := s.updateIf(ctx, id, bson.D{{Key: "updatedAt", Value: e.UpdatedAt}}, bson.D{{Key: "$set", Value: bson.D{
			{Key: "secrets", Value: secrets}, {Key: "updatedAt", Value: updated},
		}}})
		if err != nil {
			return nil, "", err
		}
		if ok {
			e.Secrets, e.UpdatedAt = secrets, updated
			return e, secret, nil
		}
	}
	return nil, "", fmt.Errorf("rotate endpoint %s: changed concurrently %d times", id, rotateTries)
}

// updateIf applies update if the endpoint still matches cond; false if it
// changed (or is gone: Get then says so).
func (s *Store) updateIf(ctx context.Context, id string, cond, update bson.D) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := s.coll.UpdateOne(ctx, append(bson.D{{Key: "_id", Value: id}}, cond...), update)
	if err != nil {
		return false, fmt.Errorf("update endpoint %s: %w", id, err)
	}
	return res.MatchedCount == 1, nil
}

// Delete removes an endpoint.
func (s *Store) Delete(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return fmt.Errorf("delete endpoint %s: %w", id, err)
	}
	if res.DeletedCount == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *Store) update(ctx context.Context, id string, update bson.D) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, update)
	if err != nil {
		return fmt.Errorf("update endpoint %s: %w", id, err)
	}
	if res.MatchedCount == 0 {
		return ErrNotFound
	}
	return nil
}
