package deployments

import (
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/kilnhq/kiln/notifier"
)

// k8sObject is the part of a Kubernetes object the tests read.
type k8sObject struct {
	file       string
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data       map[string]yaml.Node `yaml:"data"`
	StringData map[string]string    `yaml:"stringData"`
	Spec       struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				Containers                []k8sContainer `yaml:"containers"`
				TopologySpreadConstraints []struct {
					MaxSkew       int    `yaml:"maxSkew"`
					TopologyKey   string `yaml:"topologyKey"`
					LabelSelector struct {
						MatchLabels map[string]string `yaml:"matchLabels"`
					} `yaml:"labelSelector"`
				} `yaml:"topologySpreadConstraints"`
			} `yaml:"spec"`
		} `yaml:"template"`
		ScaleTargetRef struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		Strategy struct {
			Type string `yaml:"type"`
		} `yaml:"strategy"`
		MinReplicas    int `yaml:"minReplicas"`
		MinAvailable   any `yaml:"minAvailable"`
		MaxUnavailable any `yaml:"maxUnavailable"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Args    []string `yaml:"args"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
	} `yaml:"resources"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// loadManifests parses every object of deployments/k8s/*.yaml (many
// documents per file).
func loadManifests(t *testing.T) []k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("k8s", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var objs []k8sObject
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		r, err := os.Open(f)
		require.NoError(t, err)
		dec := yaml.NewDecoder(r)
		for {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, f)
			require.NotEmpty(t, o.Kind, "%s: an object without kind", f)
			require.NotEmpty(t, o.APIVersion, "%s: %s without apiVersion", f, o.Kind)
			require.NotEmpty(t, o.Metadata.Name, "%s: %s without a name", f, o.Kind)
			o.file = filepath.Base(f)
			objs = append(objs, o)
		}
		require.NoError(t, r.Close())
	}
	return objs
}

func findObject(t *testing.T, objs []k8sObject, kind, name string) k8sObject {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	require.Failf(t, "object not found", "deployments/k8s has no %s %s", kind, name)
	return k8sObject{}
}

// fromSecret is deploymentEnv's value of a variable taken from a Secret.
const fromSecret = "(secret)"

// deploymentEnv is every variable the Deployment's container gets, with its
// value: its env entries and the keys of the ConfigMaps it takes with
// envFrom (env wins, as in Kubernetes).
func deploymentEnv(t *testing.T, objs []k8sObject, name string) map[string]string {
	t.Helper()
	d := findObject(t, objs, "Deployment", name)
	require.Len(t, d.Spec.Template.Spec.Containers, 1, name)
	c := d.Spec.Template.Spec.Containers[0]
	set := map[string]string{}
	for _, ef := range c.EnvFrom {
		require.NotNil(t, ef.ConfigMapRef, "%s: envFrom only from ConfigMaps (secrets by key, so each is visible)", name)
		cm := findObject(t, objs, "ConfigMap", ef.ConfigMapRef.Name)
		for k, v := range cm.Data {
			set[k] = v.Value
		}
	}
	for _, e := range c.Env {
		set[e.Name] = e.Value
		if e.ValueFrom != nil {
			set[e.Name] = fromSecret
		}
	}
	return set
}

func TestManifestsKustomization(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("k8s", "kustomization.yaml"))
	require.NoError(t, err)
	var k struct {
		Resources []string `yaml:"resources"`
		Images    []struct {
			Name string `yaml:"name"`
		} `yaml:"images"`
	}
	require.NoError(t, yaml.Unmarshal(b, &k))
	files, err := filepath.Glob(filepath.Join("k8s", "*.yaml"))
	require.NoError(t, err)
	var want []string
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && base != "secret.example.yaml" {
			want = append(want, base)
		}
	}
	require.ElementsMatch(t, want, k.Resources, "kustomization.yaml lists every manifest (but the secret example)")
	require.Len(t, k.Images, 1, "one image")
	require.Equal(t, "ghcr.io/kilnhq/kiln", k.Images[0].Name, "kustomization.yaml sets the tag of the kiln image")
}

func TestManifestsServices(t *testing.T) {
	objs := loadManifests(t)
	secret := findObject(t, objs, "Secret", "kiln-secrets")
	// A CPU autoscaler for the roles whose load follows CPU; the others run
	// a fixed number of pods (replicas_test.go checks how many).
	autoscaled := map[string]bool{"ingest": true, "gateway": true, "projector": true}
	for _, svc := range deployedServices() {
		name := "kiln-" + svc.name
		d := findObject(t, objs, "Deployment", name)
		require.Equal(t, name, d.Spec.Selector.MatchLabels["app.kubernetes.io/name"], name)
		require.Equal(t, d.Spec.Selector.MatchLabels["app.kubernetes.io/name"], d.Spec.Template.Metadata.Labels["app.kubernetes.io/name"], name)
		c := d.Spec.Template.Spec.Containers[0]
		require.Equal(t, "ghcr.io/kilnhq/kiln", c.Image, "%s runs the one kiln image", name)
		require.Equal(t, []string{"serve", svc.name}, c.Args, name)
		require.NotNil(t, c.LivenessProbe, name)
		require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path, name)
		require.NotNil(t, c.ReadinessProbe, name)
		require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path, name)
		require.NotEmpty(t, c.Resources.Requests["cpu"], "%s: cpu request", name)
		require.NotEmpty(t, c.Resources.Requests["memory"], "%s: memory request", name)
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				require.Equal(t, "kiln-secrets", e.ValueFrom.SecretKeyRef.Name, name)
				require.Contains(t, secret.StringData, e.ValueFrom.SecretKeyRef.Key, "secret.example.yaml documents %s", e.ValueFrom.SecretKeyRef.Key)
			}
		}

		pdb := findObject(t, objs, "PodDisruptionBudget", name)
		require.Equal(t, name, pdb.Spec.Selector.MatchLabels["app.kubernetes.io/name"])
		require.True(t, pdb.Spec.MinAvailable != nil || pdb.Spec.MaxUnavailable != nil, "%s: PDB", name)

		hpa := slices.IndexFunc(objs, func(o k8sObject) bool {
			return o.Kind == "HorizontalPodAutoscaler" && o.Spec.ScaleTargetRef.Name == name
		})
		require.Equal(t, autoscaled[svc.name], hpa >= 0, "%s: HPA for %v only", name, slices.Sorted(maps.Keys(autoscaled)))
		if hpa >= 0 {
			require.GreaterOrEqual(t, objs[hpa].Spec.MinReplicas, 2, "%s: the HPA never scales below two pods", name)
		}
	}
	// ConfigMap values must be strings, or the API server refuses them.
	for _, o := range objs {
		for k, v := range o.Data {
			require.Equal(t, "!!str", v.ShortTag(), "%s: ConfigMap %s: %s must be a quoted string", o.file, o.Metadata.Name, k)
		}
	}
	common := findObject(t, objs, "ConfigMap", "kiln-common")
	require.Equal(t, "3", common.Data["STREAM_REPLICAS"].Value, "EVENTS replicated on the three NATS nodes")
	require.Len(t, strings.Split(common.Data["NATS_URL"].Value, ","), 3, "clients know every NATS node")
}

// TestManifestsNATS loads the StatefulSet's nats.conf with the server's own
// parser, as pod nats-1 would.
func TestManifestsNATS(t *testing.T) {
	objs := loadManifests(t)
	cm := findObject(t, objs, "ConfigMap", "nats-config")
	path := filepath.Join(t.TempDir(), "nats.conf")
	require.NoError(t, os.WriteFile(path, []byte(cm.Data["nats.conf"].Value), 0o600))
	t.Setenv("POD_NAME", "nats-1")
	opts := loadNATSConfig(t, path)
	require.Equal(t, "nats-1", opts.ServerName)
	require.True(t, opts.JetStream)
	require.Equal(t, "kiln", opts.Cluster.Name)
	require.Equal(t, 6222, opts.Cluster.Port)
	require.Equal(t, 8222, opts.HTTPPort)
	require.ElementsMatch(t, []string{
		"nats-0.nats-headless:6222", "nats-1.nats-headless:6222", "nats-2.nats-headless:6222",
	}, routeHosts(opts.Routes))

	sts := findObject(t, objs, "StatefulSet", "nats")
	require.Equal(t, 3, *sts.Spec.Replicas)
	pdb := findObject(t, objs, "PodDisruptionBudget", "nats")
	require.Equal(t, 1, pdb.Spec.MaxUnavailable, "an R3 stream survives one node away, not two")

	// Every NATS_URL node is a pod of the StatefulSet.
	common := findObject(t, objs, "ConfigMap", "kiln-common")
	for i, u := range strings.Split(common.Data["NATS_URL"].Value, ",") {
		require.Equal(t, "nats://nats-"+string(rune('0'+i))+".nats-headless:4222", u)
	}
}

// TestManifestsNotifierRules checks the rules ConfigMap the way the
// notifier checks its file at start-up.
func TestManifestsNotifierRules(t *testing.T) {
	objs := loadManifests(t)
	rules := findObject(t, objs, "ConfigMap", "kiln-notifier-rules")
	cfgMap := findObject(t, objs, "ConfigMap", "kiln-notifier")
	require.Equal(t, "/etc/kiln/rules.yaml", cfgMap.Data["NOTIFIER_RULES_FILE"].Value)
	path := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(path, []byte(rules.Data["rules.yaml"].Value), 0o600))
	cfg, err := notifier.LoadConfig(map[string]string{"NOTIFIER_RULES_FILE": path})
	require.NoError(t, err)
	names, err := notifier.CheckRules(cfg)
	require.NoError(t, err)
	require.NotEmpty(t, names)
}
