package httpserver

import (
	"strings"
	"testing"
)

func TestParseOriginsRefusesWhatIsNotAnOrigin(t *testing.T) {
	for _, list := range []string{
		"",
		" , ",
		"app.example.com",
		"https://app.example.com/path",
		"https://app.example.com?x=1",
		"https://user@app.example.com",
		"https://*",
		"https://a.*.example.com",
		"https://*example.com",
		"*.example.com",
		"https://ok.example.com, ftp//bad",
	} {
		_, err := ParseOrigins(list)
		if err == nil {
			t.Errorf("ParseOrigins(%q): no error", list)
			continue
		}
		if !strings.Contains(err.Error(), OriginsVar) {
			t.Errorf("ParseOrigins(%q) = %v: the error does not name %s", list, err, OriginsVar)
		}
	}
}

func TestOriginsAllows(t *testing.T) {
	tests := []struct {
		list    string
		origin  string
		allowed bool
		listed  bool
	}{
		{"*", "http://127.0.0.1:5173", true, false},
		{"*, https://app.example.com", "https://app.example.com", true, true},
		{"https://app.example.com", "https://app.example.com", true, true},
		{"https://app.example.com/", "https://APP.example.com", true, true},
		{"https://app.example.com", "http://app.example.com", false, false},
		{"https://app.example.com", "https://app.example.com:8443", false, false},
		{"https://app.example.com", "https://evil.example.com", false, false},
		{"http://127.0.0.1:5173", "http://127.0.0.1:5173", true, true},
		{"http://127.0.0.1:5173", "http://127.0.0.1:5174", false, false},
		{"https://*.example.com", "https://a.example.com", true, true},
		{"https://*.example.com", "https://a.b.example.com", true, true},
		{"https://*.example.com", "https://example.com", false, false},
		{"https://*.example.com", "https://a.example.com.evil.com", false, false},
		{"https://*.example.com", "https://evilexample.com", false, false},
		{"https://*.example.com", "http://a.example.com", false, false},
		{"https://*.example.com:8443", "https://a.example.com:8443", true, true},
		{"https://*.example.com", "https://a.example.com:8443", false, false},
	}
	for _, tt := range tests {
		o, err := ParseOrigins(tt.list)
		if err != nil {
			t.Fatalf("ParseOrigins(%q): %v", tt.list, err)
		}
		if got := o.Allows(tt.origin); got != tt.allowed {
			t.Errorf("%q.Allows(%q) = %v, want %v", tt.list, tt.origin, got, tt.allowed)
		}
		if got := o.Listed(tt.origin); got != tt.listed {
			t.Errorf("%q.Listed(%q) = %v, want %v", tt.list, tt.origin, got, tt.listed)
		}
	}
}

func TestOriginsAllowsRequestFromItsOwnOrigin(t *testing.T) {
	o, err := ParseOrigins("https://app.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !o.AllowsRequest("http://kiln.internal:8080", "kiln.internal:8080") {
		t.Error("a page Kiln serves itself (Origin host = Host) was refused")
	}
	if o.AllowsRequest("http://other:8080", "kiln.internal:8080") {
		t.Error("an unlisted origin was allowed")
	}
	var zero Origins
	if zero.Allows("http://127.0.0.1:5173") {
		t.Error("the zero policy allowed a cross-origin page")
	}
}

func TestOriginsUnmarshalText(t *testing.T) {
	var o Origins
	if err := o.UnmarshalText([]byte("https://a.example.com,https://*.b.example.com")); err != nil {
		t.Fatal(err)
	}
	if !o.Allows("https://x.b.example.com") || o.Any() {
		t.Errorf("parsed %q wrong", o)
	}
	if err := o.UnmarshalText([]byte("nope")); err == nil {
		t.Error("UnmarshalText(nope): no error")
	}
}
