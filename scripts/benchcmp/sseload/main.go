// Command sseload measures how long one change takes to reach N SSE
// subscribers: it opens N streams on 127.0.0.1 (raw TCP, one goroutine
// each), waits until all are connected, then per round sends one trigger
// request and times, per stream, the first "event:" line after it. It prints
// the latency percentiles over all streams and timed rounds, then closes the
// streams. Bounded: N ≤ 20000, rounds ≤ 100, warm-up rounds ≤ 10.
//
// With -pid it also reports the server's RSS (VmRSS of /proc/PID/status):
// before the streams open, with all of them open (after the rounds), and
// -after seconds after they were closed; and the server's CPU time (user +
// system, all threads, from /proc/PID/task/*/schedstat) per timed change,
// which waiting for a core on a loaded machine does not inflate.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func main() {
	streamURL := flag.String("url", "", "event stream URL (http://127.0.0.1:…)")
	token := flag.String("token", "", "bearer token ('' sends none)")
	n := flag.Int("n", 1000, "streams")
	rounds := flag.Int("rounds", 10, "changes to time")
	warmup := flag.Int("warmup", 0, "untimed changes before the timed ones (each trigger body once loads what it names)")
	method := flag.String("trigger-method", "POST", "trigger request method")
	trigger := flag.String("trigger", "", "trigger URL")
	pid := flag.Int("pid", 0, "server process whose RSS to report (0: none)")
	after := flag.Duration("after", 3*time.Second, "with -pid: how long after the streams closed to read the RSS again")
	var bodies multi
	flag.Var(&bodies, "trigger-body", "trigger body; repeat to alternate between several")
	flag.Parse()
	if *n < 1 || *n > 20000 || *rounds < 1 || *rounds > 100 || *warmup < 0 || *warmup > 10 || *after < 0 || *after > time.Minute {
		log.Fatal("sseload: 1 ≤ n ≤ 20000, 1 ≤ rounds ≤ 100, 0 ≤ warmup ≤ 10, 0 ≤ after ≤ 1m")
	}
	u, err := url.Parse(*streamURL)
	if err != nil || !strings.HasPrefix(u.Host, "127.0.0.1:") {
		log.Fatal("sseload: the stream URL must be on 127.0.0.1")
	}
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nAccept: text/event-stream\r\n"
	if *token != "" {
		req += "Authorization: Bearer " + *token + "\r\n"
	}
	req += "\r\n"
	rssBefore := rss(*pid)

	type stream struct {
		conn net.Conn
		got  chan time.Time
	}
	streams := make([]*stream, *n)
	var ready sync.WaitGroup
	// At most 256 streams waiting for their answer: a burst of thousands
	// of handshakes overflows the listen queue, and the dropped ones wait
	// for TCP's retransmissions (or are refused).
	pending := make(chan struct{}, 256)
	for i := range streams {
		pending <- struct{}{}
		var c net.Conn
		for try := 0; ; try++ {
			c, err = net.Dial("tcp", u.Host)
			if err == nil || try == 5 {
				break
			}
			time.Sleep(time.Duration(100<<try) * time.Millisecond)
		}
		if err != nil {
			log.Fatalf("sseload: stream %d: %v", i, err)
		}
		if _, err := c.Write([]byte(req)); err != nil {
			log.Fatal(err)
		}
		s := &stream{conn: c, got: make(chan time.Time, 4)}
		streams[i] = s
		ready.Add(1)
		go func() {
			r := bufio.NewReaderSize(c, 1024)
			connected := false
			for {
				line, err := r.ReadSlice('\n')
				if err != nil {
					if !connected {
						ready.Done()
						<-pending
					}
					close(s.got)
					return
				}
				switch {
				case !connected && bytes.HasPrefix(line, []byte(": connected")):
					connected = true
					ready.Done()
					<-pending
				case bytes.HasPrefix(line, []byte("event: ")):
					s.got <- time.Now()
				}
			}
		}()
	}
	ready.Wait()
	time.Sleep(200 * time.Millisecond)

	var lat []time.Duration
	var cpu0 int64
	client := &http.Client{Timeout: 30 * time.Second}
	for round := 0; round < *warmup+*rounds; round++ {
		if round == *warmup {
			cpu0 = cpuNS(*pid)
		}
		var body string
		if len(bodies) > 0 {
			body = bodies[round%len(bodies)]
		}
		hr, _ := http.NewRequest(*method, *trigger, strings.NewReader(body))
		if *token != "" {
			hr.Header.Set("Authorization", "Bearer "+*token)
		}
		hr.Header.Set("Content-Type", "application/json")
		t0 := time.Now()
		resp, err := client.Do(hr)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			log.Fatalf("sseload: trigger answered %s", resp.Status)
		}
		deadline := time.After(30 * time.Second)
		for _, s := range streams {
			select {
			case at, ok := <-s.got:
				if !ok {
					log.Fatal("sseload: a stream ended")
				}
				if round >= *warmup {
					lat = append(lat, at.Sub(t0))
				}
			case <-deadline:
				log.Fatal("sseload: not every stream saw the change within 30 s")
			}
		}
		// Drain extra events of this change (several kinds per change).
		time.Sleep(100 * time.Millisecond)
		for _, s := range streams {
		drain:
			for {
				select {
				case <-s.got:
				default:
					break drain
				}
			}
		}
	}
	cpuPerChange := float64(cpuNS(*pid)-cpu0) / float64(*rounds) / 1e6
	rssWith := rss(*pid)
	for _, s := range streams {
		s.conn.Close()
	}
	rssAfter := ""
	if *pid != 0 {
		time.Sleep(*after)
		rssAfter = rss(*pid)
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	fmt.Fprintf(os.Stdout, "streams=%d rounds=%d p50=%.2fms p90=%.2fms p99=%.2fms max=%.2fms", *n, *rounds,
		ms(pct(0.5)), ms(pct(0.9)), ms(pct(0.99)), ms(lat[len(lat)-1]))
	if *pid != 0 {
		fmt.Fprintf(os.Stdout, " cpu_per_change=%.2fms rss_before=%sMB rss_with=%sMB rss_after=%sMB", cpuPerChange, rssBefore, rssWith, rssAfter)
	}
	fmt.Fprintln(os.Stdout)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// rss is the VmRSS of process pid in MB with one decimal ("" for pid 0).
func rss(pid int) string {
	if pid == 0 {
		return ""
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		log.Fatalf("sseload: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return strconv.FormatFloat(float64(kb)/1024, 'f', 1, 64)
		}
	}
	return "?"
}

// cpuNS is the CPU time process pid's threads have run, in nanoseconds (0
// for pid 0): the first field of each /proc/PID/task/*/schedstat.
func cpuNS(pid int) int64 {
	if pid == 0 {
		return 0
	}
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		log.Fatalf("sseload: %v", err)
	}
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread ended
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			sum += n
		}
	}
	return sum
}
