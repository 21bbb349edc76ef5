package data

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/envplane/envplane/internal/tree"
)

// URLFromConfig reads the database URL at key in a resolved config: a
// postgres:// URL, or a map with host, port, name (or database), user,
// password and sslmode.
func URLFromConfig(cfg *tree.Value, key string) (string, error) {
	v := cfg
	if v != nil {
		v = v.Lookup(tree.SplitKey(key))
	}
	if v == nil || v.Kind == tree.Null {
		return "", fmt.Errorf("config key %s is not set: data.database names the key holding the environment's PostgreSQL URL", key)
	}
	if v.Kind != tree.Map {
		s := v.Scalar()
		if !strings.HasPrefix(s, "postgres://") && !strings.HasPrefix(s, "postgresql://") {
			return "", fmt.Errorf("config key %s: expected a postgres:// URL or a map with host, port, name, user, password", key)
		}
		return s, nil
	}
	get := func(names ...string) string {
		for _, n := range names {
			if c := v.Get(n); c != nil && c.Kind != tree.Null {
				return c.Scalar()
			}
		}
		return ""
	}
	host, name := get("host"), get("name", "database", "dbname")
	var missing []string
	if host == "" {
		missing = append(missing, "host")
	}
	if name == "" {
		missing = append(missing, "name")
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("config key %s: missing %s", key, strings.Join(missing, " and "))
	}
	if port := get("port"); port != "" {
		host = net.JoinHostPort(host, port)
	}
	u := &url.URL{Scheme: "postgres", Host: host, Path: "/" + name}
	if user := get("user", "username"); user != "" {
		if pw := get("password"); pw != "" {
			u.User = url.UserPassword(user, pw)
		} else {
			u.User = url.User(user)
		}
	}
	q := url.Values{}
	if ssl := get("sslmode"); ssl != "" {
		q.Set("sslmode", ssl)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// urlKey is host:port/database of a URL, to tell two databases apart.
func urlKey(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "5432"
	}
	switch host {
	case "", "localhost", "::1":
		host = "127.0.0.1"
	}
	if _, err := strconv.Atoi(port); err != nil {
		return "", err
	}
	return host + ":" + port + "/" + strings.TrimPrefix(u.Path, "/"), nil
}

// Redact removes every password of urls from s: errors from drivers may
// quote a connection string.
func Redact(s string, urls ...string) string {
	var pws []string
	for _, raw := range urls {
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && pw != "" {
				pws = append(pws, pw, url.QueryEscape(pw))
			}
		}
	}
	sort.Slice(pws, func(i, j int) bool { return len(pws[i]) > len(pws[j]) })
	for _, pw := range pws {
		s = strings.ReplaceAll(s, pw, "***")
	}
	return s
}
