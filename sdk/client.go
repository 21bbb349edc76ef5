// Package envplane is the Go client of an envplane server: it fetches the
// resolved configuration of one environment (and service), keeps it fresh
// through the server's event stream, and turns error bodies into typed
// errors. Do reaches any route of the HTTP API with the same authentication
// and error model; the envplane command line uses it for every command that
// talks to a server. It imports nothing of the server, so applications stay
// light.
package envplane

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Sentinel errors matched with errors.Is against an *Error's code.
var (
	ErrInvalid      = errors.New("invalid")
	ErrNotFound     = errors.New("not_found")
	ErrConflict     = errors.New("conflict")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrUnavailable  = errors.New("unavailable")
)

// FieldError is one problem with one field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is an error answered by the server.
type Error struct {
	Status  int
	Code    string
	Message string
	Fields  []FieldError
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("envplane: %s (%d %s)", e.Message, e.Status, e.Code)
	for _, f := range e.Fields {
		msg += "\n  " + f.Field + ": " + f.Message
	}
	return msg
}

// Is lets errors.Is(err, ErrNotFound) and friends work.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrInvalid, ErrNotFound, ErrConflict, ErrUnauthorized, ErrForbidden, ErrUnavailable:
		return e.Code == target.Error()
	}
	return false
}

// Client talks to one envplane server: Config and Watch for one
// environment, Do for any route of the API.
type Client struct {
	base  *url.URL
	token string
	env   string
	http  *http.Client

	mu    sync.Mutex
	cache map[string]*Config // by service
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient replaces the default HTTP client.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// New returns a client for environment env of the server at baseURL,
// authenticating with token (an SDK key for env, or any token allowed to read it).
func New(baseURL, token, env string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("envplane: server URL %q: want http(s)://host[:port]", baseURL)
	}
	if env == "" {
		return nil, errors.New("envplane: an environment is required")
	}
	return newClient(u, token, env, opts), nil
}

// NewAPI returns a client of the server at baseURL for Do alone, bound to
// no environment: Config and Watch on it fail. The URL must be http(s)://host[:port].
func NewAPI(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("envplane: server URL %q: want http(s)://host[:port]", baseURL)
	}
	return newClient(u, token, "", opts), nil
}

func newClient(u *url.URL, token, env string, opts []Option) *Client {
	c := &Client{base: u, token: token, env: env, http: &http.Client{Timeout: 30 * time.Second}, cache: map[string]*Config{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// errNoEnvironment is what Config and Watch answer on a client from NewAPI.
var errNoEnvironment = errors.New("envplane: this client has no environment (made by NewAPI); use New")

// maxBody bounds the answers the client reads.
const maxBody = 64 << 20

// Do sends one request to the API: method and path (with its /api/v1
// prefix), query parameters, in encoded as the JSON body when non-nil. A
// successful answer is decoded into out when non-nil; a *json.RawMessage
// receives the body as it is. An error answer is an *Error carrying the
// server's code, message and field errors; status is the HTTP status
// whenever there was an answer (200 and 201 tell an existing release from a
// new one).
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, in, out any) (status int, err error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("envplane: encode the request body: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint(path, query), body)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot reach %s: %w", c.base.Redacted(), unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return resp.StatusCode, readError(resp)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("envplane: read the answer of %s %s: %w", method, path, err)
	}
	if out == nil {
		return resp.StatusCode, nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = append((*raw)[:0], data...)
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.StatusCode, fmt.Errorf("envplane: unexpected answer to %s %s: %w", method, path, err)
	}
	return resp.StatusCode, nil
}

// unwrapURLError drops *url.Error's "Get \"URL\": " prefix, which repeats
// what the caller already says.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Config is one resolved configuration.
type Config struct {
	Environment string
	Service     string
	ETag        string
	Raw         json.RawMessage
	values      map[string]any
}

// Values is the configuration as nested maps.
func (c *Config) Values() map[string]any { return c.values }

// Get returns the value at a dotted key path (server.port).
func (c *Config) Get(path string) (any, bool) {
	var cur any = c.values
	for _, seg := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// String returns the value at path as text.
func (c *Config) String(path string) (string, bool) {
	v, ok := c.Get(path)
	if !ok {
		return "", false
	}
	if s, isString := v.(string); isString {
		return s, true
	}
	b, _ := json.Marshal(v)
	return string(b), true
}

// Int returns the number at path.
func (c *Config) Int(path string) (int64, bool) {
	v, ok := c.Get(path)
	if n, isNum := v.(json.Number); ok && isNum {
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}

// Bool returns the boolean at path.
func (c *Config) Bool(path string) (bool, bool) {
	v, ok := c.Get(path)
	b, isBool := v.(bool)
	return b, ok && isBool
}

func (c *Client) endpoint(path string, q url.Values) string {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawQuery = q.Encode()
	return u.String()
}

// Config fetches the resolved configuration of service ("" for none). An
// unchanged configuration is answered 304 from the client's copy.
func (c *Client) Config(ctx context.Context, service string) (*Config, error) {
	if c.env == "" {
		return nil, errNoEnvironment
	}
	q := url.Values{}
	if service != "" {
		q.Set("service", service)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint("/api/v1/environments/"+url.PathEscape(c.env)+"/config", q), nil)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	cached := c.cache[service]
	c.mu.Unlock()
	if cached != nil {
		req.Header.Set("If-None-Match", cached.ETag)
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified && cached != nil {
		return cached, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, readError(resp)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	cfg := &Config{Environment: c.env, Service: service, ETag: resp.Header.Get("ETag"), Raw: raw}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&cfg.values); err != nil {
		return nil, fmt.Errorf("envplane: config of %s is not a JSON object: %w", c.env, err)
	}
	c.mu.Lock()
	c.cache[service] = cfg
	c.mu.Unlock()
	return cfg, nil
}

func (c *Client) do(req *http.Request) (*http.Response, error) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	return c.http.Do(req)
}

func readError(resp *http.Response) error {
	var body struct {
		Error struct {
			Code    string       `json:"code"`
			Message string       `json:"message"`
			Fields  []FieldError `json:"fields"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(b, &body); err != nil || body.Error.Code == "" {
		msg := strings.TrimSpace(string(b))
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return &Error{Status: resp.StatusCode, Code: statusCode(resp.StatusCode), Message: msg}
	}
	return &Error{Status: resp.StatusCode, Code: body.Error.Code, Message: body.Error.Message, Fields: body.Error.Fields}
}

func statusCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusConflict:
		return "conflict"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	return "internal"
}

// Watch calls fn with the current configuration of service and again after
// every change the server announces on its event stream, until ctx ends. A
// dropped stream is reopened with backoff; a refused one (401, 403, 404) ends
// Watch with that error.
func (c *Client) Watch(ctx context.Context, service string, fn func(*Config)) error {
	if c.env == "" {
		return errNoEnvironment
	}
	backoff := 100 * time.Millisecond
	var last string
	deliver := func() error {
		cfg, err := c.Config(ctx, service)
		if err != nil {
			return err
		}
		if cfg.ETag != last || last == "" {
			last = cfg.ETag
			fn(cfg)
		}
		return nil
	}
	for {
		err := c.stream(ctx, deliver)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var e *Error
		if errors.As(err, &e) && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden || e.Status == http.StatusNotFound) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}

// stream opens the event stream, delivers the current config once it is
// open, and again on every event.
func (c *Client) stream(ctx context.Context, deliver func() error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint("/api/v1/environments/"+url.PathEscape(c.env)+"/events", nil), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// The stream stays open: no client timeout, only ctx.
	h := *c.http
	h.Timeout = 0
	resp, err := h.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readError(resp)
	}
	if err := deliver(); err != nil {
		return err
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	pending := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if pending {
				pending = false
				if err := deliver(); err != nil {
					return err
				}
			}
		case strings.HasPrefix(line, "data:"), strings.HasPrefix(line, "event:"):
			pending = true
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}
