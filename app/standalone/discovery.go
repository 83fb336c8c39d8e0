package standalone

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// DiscoveryFile is the file, under the data folder, in which a running
// standalone names its stores so that the kiln CLI finds them without flags.
const DiscoveryFile = "kiln-standalone.json"

// discovery is the content of DiscoveryFile.
type discovery struct {
	PID           int    `json:"pid"`
	HTTP          string `json:"http"`
	NATSURL       string `json:"natsUrl"`
	MongoURI      string `json:"mongoUri"`
	MongoDatabase string `json:"mongoDatabase"`
	RedisURL      string `json:"redisUrl"`
	// Redis and Store say what serves RedisURL and MongoURI (see deps):
	// benchmarks label their results with them.
	Redis string `json:"redis"`
	Store string `json:"store"`
}

// writeDiscovery writes DiscoveryFile atomically and returns its remover.
func writeDiscovery(cfg Config, d *deps) (remove func(), err error) {
	b, err := json.MarshalIndent(discovery{
		PID: os.Getpid(), HTTP: "http://localhost:" + strconv.Itoa(cfg.Port),
		NATSURL: d.natsURL, MongoURI: d.mongoURI, MongoDatabase: cfg.Projector.MongoDatabase, RedisURL: d.redisURL,
		Redis: d.redisKind, Store: d.storeKind,
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(cfg.DataDir, DiscoveryFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("discovery file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("discovery file: %w", err)
	}
	return func() { _ = os.Remove(path) }, nil
}
