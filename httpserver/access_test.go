package httpserver_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/httpserver/tokens"
)

const (
	pk        = "pk_test_0123456789abcdef"
	secret    = "0123456789abcdef0123456789abcdef"
	shop      = "https://shop.example.com"
	pkSetting = pk + " types=page.*,ui.click origins=" + shop + ",https://*.example.org"
)

func TestParsePublishableNamesTheFault(t *testing.T) {
	t.Parallel()
	for setting, want := range map[string]string{
		"pk_test_0123456789abcdef types=page.*":                      "origins= is required",
		"pk_test_0123456789abcdef origins=*":                         "types= is required",
		"pk_test_0123456789abcdef types=page..x origins=*":           "types:",
		"pk_test_0123456789abcdef types=page.* origins=shop.example": "is not an origin",
		"short types=page.* origins=*":                               "at least 16",
		"types=page.* origins=*":                                     "not a key",
		pkSetting + ";" + pkSetting:                                  "entry 2: the key is listed twice",
		"pk_test_0123456789abcdef types=page.* colour=red":           `"colour=red" is not types=`,
	} {
		_, err := httpserver.ParsePublishable(setting)
		require.ErrorContains(t, err, want, setting)
		require.NotContains(t, err.Error(), "0123456789abcdef", "an error never prints a key")
	}
	p, err := httpserver.ParsePublishable(" ; " + pkSetting + " ;")
	require.NoError(t, err)
	require.True(t, p.Enabled())
}

func TestResolve(t *testing.T) {
	t.Parallel()
	tc := tokens.Config{Secrets: []string{secret}}
	a, err := httpserver.NewAccess([]string{"ingest-key"}, []string{"read-key"}, pkSetting, tc)
	require.NoError(t, err)
	k, err := tokens.NewKeyring(tc)
	require.NoError(t, err)
	token, err := k.Sign(tokens.Mint{Types: []string{"order.*"}, UserID: "u1", TTL: time.Minute}, time.Now())
	require.NoError(t, err)
	expired, err := k.Sign(tokens.Mint{Types: []string{"order.*"}, TTL: time.Minute}, time.Now().Add(-time.Hour))
	require.NoError(t, err)

	r, err := a.Resolve(pk, shop)
	require.NoError(t, err)
	require.True(t, r.CanWrite())
	require.True(t, r.MayWrite("page.view"))
	require.False(t, r.MayWrite("order.created"))
	require.False(t, r.CanRead())
	r, err = a.Resolve(pk, "https://eu.example.org")
	require.NoError(t, err)
	require.True(t, r.MayWrite("ui.click"))
	for _, origin := range []string{"", "https://evil.example", "https://example.org", "http://shop.example.com"} {
		_, err = a.Resolve(pk, origin)
		var d *httpserver.Denied
		require.ErrorAs(t, err, &d, origin)
		require.Equal(t, http.StatusForbidden, d.Status, origin)
	}

	r, err = a.Resolve(token, "")
	require.NoError(t, err)
	require.False(t, r.CanWrite())
	require.True(t, r.MayRead("order.created", "u1"))
	require.False(t, r.MayRead("order.created", "u2"))
	require.False(t, r.MayRead("payment.failed", "u1"))
	_, err = a.Resolve(expired, "")
	require.EqualError(t, err, "subscriber token refused: token expired")

	r, err = a.Resolve("read-key", "")
	require.NoError(t, err)
	require.True(t, r.ReadAll)
	require.False(t, r.CanWrite())
	r, err = a.Resolve("ingest-key", "")
	require.NoError(t, err)
	require.True(t, r.WriteAll)
	require.False(t, r.CanRead())
	r, err = a.Resolve("", "")
	require.NoError(t, err)
	require.Equal(t, httpserver.Rights{}, r)

	open, err := httpserver.NewAccess(nil, nil, "", tokens.Config{})
	require.NoError(t, err)
	r, err = open.Resolve("", "")
	require.NoError(t, err)
	require.True(t, r.WriteAll && r.ReadAll, "with no credentials configured both sides are open")
}
