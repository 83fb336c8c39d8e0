package command

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// standaloneFile is the file a running standalone writes under its data
// folder naming its stores (app/standalone DiscoveryFile).
const standaloneFile = "kiln-standalone.json"

// discovered are the stores of a running standalone, if one left its file
// in the data folder (KILN_DATA_DIR, else ./data).
type discovered struct {
	NATSURL       string `json:"natsUrl"`
	MongoURI      string `json:"mongoUri"`
	MongoDatabase string `json:"mongoDatabase"`
	RedisURL      string `json:"redisUrl"`
	path          string
}

func discover(get func(string) string) discovered {
	dir := get("KILN_DATA_DIR")
	if dir == "" {
		dir = "data"
	}
	path := filepath.Join(dir, standaloneFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return discovered{}
	}
	var d discovered
	if json.Unmarshal(b, &d) != nil {
		return discovered{}
	}
	d.path = path
	return d
}

// setting is the value of a connection flag's default: the environment
// variable, else what a running standalone wrote, else def.
func setting(get func(string) string, key, found, def string) string {
	if v := get(key); v != "" {
		return v
	}
	if found != "" {
		return found
	}
	return def
}
