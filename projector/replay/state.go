package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Status of a replay.
const (
	StatusRunning     = "running"
	StatusInterrupted = "interrupted"
	StatusDone        = "done"
	StatusFailed      = "failed"
)

// heartbeatTimeout is how long a running replay may go silent before
// another may take over (its process is presumed dead).
const heartbeatTimeout = 30 * time.Second

// ErrInProgress is returned when another replay of the projection runs.
var ErrInProgress = errors.New("a replay of this projection is already running")

// State is a replay's progress, stored in the replays collection so that an
// interrupted replay can be resumed and a concurrent one refused.
type State struct {
	Projection string `bson:"_id" json:"projection"`
	Generation int64  `bson:"generation" json:"generation"`
	FromSeq    uint64 `bson:"fromSeq" json:"fromSeq"`
	Position   uint64 `bson:"position" json:"position"` // last sequence applied to the shadow
	Status     string `bson:"status" json:"status"`
	Owner      string `bson:"owner" json:"owner"`
	Heartbeat  int64  `bson:"heartbeat" json:"heartbeat"`
	StartedAt  int64  `bson:"startedAt" json:"startedAt"`
	Error      string `bson:"error,omitempty" json:"error,omitempty"`
	// Full: the replay started at the stream's first event (no --from-*).
	Full bool `bson:"full,omitempty" json:"full,omitempty"`
}

type stateStore struct{ coll *mongo.Collection }

func newStateStore(db *mongo.Database) stateStore {
	return stateStore{coll: db.Collection("replays")}
}

// Load returns the stored state of a projection's latest replay.
func (s stateStore) Load(ctx context.Context, projection string) (State, bool, error) {
	var st State
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: projection}}).Decode(&st)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("load replay state %s: %w", projection, err)
	}
	return st, true, nil
}

// Claim stores st as running for owner, refusing if another live owner runs.
func (s stateStore) Claim(ctx context.Context, st State, now time.Time) error {
	cur, found, err := s.Load(ctx, st.Projection)
	if err != nil {
		return err
	}
	if found && cur.Status == StatusRunning && cur.Owner != st.Owner && now.UnixMilli()-cur.Heartbeat < heartbeatTimeout.Milliseconds() {
		return fmt.Errorf("%w (owner %s, at sequence %d)", ErrInProgress, cur.Owner, cur.Position)
	}
	st.Status, st.Heartbeat = StatusRunning, now.UnixMilli()
	filter := bson.D{{Key: "_id", Value: st.Projection}}
	if found {
		// Only replace what we read, so two claimers cannot both win.
		filter = append(filter, bson.E{Key: "heartbeat", Value: cur.Heartbeat}, bson.E{Key: "owner", Value: cur.Owner})
	}
	res, err := s.coll.ReplaceOne(ctx, filter, st, options.Replace().SetUpsert(!found))
	if mongo.IsDuplicateKeyError(err) || (err == nil && found && res.MatchedCount == 0) {
		return ErrInProgress
	}
	if err != nil {
		return fmt.Errorf("claim replay %s: %w", st.Projection, err)
	}
	return nil
}

// Save records progress (and the heartbeat) of the owner's replay.
func (s stateStore) Save(ctx context.Context, st State, now time.Time) error {
	st.Heartbeat = now.UnixMilli()
	_, err := s.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: st.Projection}, {Key: "owner", Value: st.Owner}}, st)
	if err != nil {
		return fmt.Errorf("save replay state %s: %w", st.Projection, err)
	}
	return nil
}

// List returns every stored replay state.
func (s stateStore) List(ctx context.Context) ([]State, error) {
	cur, err := s.coll.Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("list replays: %w", err)
	}
	var out []State
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list replays: %w", err)
	}
	return out, nil
}

// States returns the stored state of every projection's latest replay.
func States(ctx context.Context, db *mongo.Database) ([]State, error) {
	return newStateStore(db).List(ctx)
}
