package jsonscan

import "testing"

func TestValidText(t *testing.T) {
	for _, tt := range []struct {
		text string
		want bool
	}{
		{`{"a":"plain","b":"é","c":"\u00e9\n\\u","d":"\ud83d\ude00"}`, true},
		{`"\\"`, true},
		{`"\\\ud800"`, false},
		{"\"\xf5x\"", false},
		{"{\"\xff\":1}", false},
		{`"\ud800"`, false},
		{`"\ud800x"`, false},
		{`"\ud800\u0041"`, false},
		{`"\udc00"`, false},
		{`"\ufffd"`, true},
	} {
		if got := ValidText([]byte(tt.text)); got != tt.want {
			t.Errorf("ValidText(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}
