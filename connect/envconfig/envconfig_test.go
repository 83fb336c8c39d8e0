package envconfig_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/connect/envconfig"
)

type settings struct {
	Size int `env:"TEST_SIZE" envDefault:"5"`
}

func (s *settings) Validate() error {
	if s.Size < 1 {
		return errors.New("TEST_SIZE must be at least 1")
	}
	return nil
}

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		want    int
		wantErr string
	}{
		{env: map[string]string{}, want: 5},
		{env: map[string]string{"TEST_SIZE": "7"}, want: 7},
		{env: map[string]string{"TEST_SIZE": "0"}, wantErr: "test config: TEST_SIZE must be at least 1"},
		{env: map[string]string{"TEST_SIZE": "x"}, wantErr: "test config: "},
	} {
		s, err := envconfig.Load[settings](tc.env, "test")
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%v: %v", tc.env, err)
		case tc.wantErr == "" && s.Size != tc.want:
			t.Errorf("%v: size %d, want %d", tc.env, s.Size, tc.want)
		case tc.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.wantErr)):
			t.Errorf("%v: error %v, want it to start with %q", tc.env, err, tc.wantErr)
		}
	}
}
