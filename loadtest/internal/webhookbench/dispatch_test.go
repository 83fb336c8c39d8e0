package webhookbench

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseMetrics(t *testing.T) {
	tests := []struct {
		name string
		text string
		want processSample
	}{
		{
			name: "the three",
			text: "# HELP go_goroutines Number of goroutines.\ngo_goroutines 312\ngo_goroutines_other 9\n" +
				"process_cpu_seconds_total 12.5\nprocess_resident_memory_bytes 2.097152e+08\n",
			want: processSample{goroutines: 312, rssMiB: 200, cpuSeconds: 12.5},
		},
		{name: "none", text: "up 1\n", want: processSample{}},
		{name: "unreadable value", text: "go_goroutines many\n", want: processSample{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, parseMetrics(tt.text))
		})
	}
}
