// Command relgen generates a workspace of about -mb megabytes (one
// environment, -mb×10 layer files of ~100 KB, plus one small file) and
// drives an envplane server on 127.0.0.1 with it: it uploads the variants
// given (a variant changes only the small file), timing each POST, and then
// optionally times PUT …/release alternating between the first two distinct
// releases. With -sqlite it prints the database's used bytes after each
// upload; with -pg, the releases' tables' size in that PostgreSQL database.
package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"slices"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

func workspace(mb int, variant string) map[string]string {
	files := map[string]string{}
	var layers []string
	layers = append(layers, "config/small.yaml")
	files["config/small.yaml"] = "small:\n  variant: \"" + variant + "\"\n"
	for i := 0; i < mb*10; i++ {
		name := fmt.Sprintf("config/p%03d.yaml", i)
		layers = append(layers, name)
		var b strings.Builder
		fmt.Fprintf(&b, "p%03d:\n", i)
		for k := 0; b.Len() < 100_000; k++ {
			fmt.Fprintf(&b, "  k%04d: \"%s-%03d-%04d\"\n", k, strings.Repeat("v", 70), i, k)
		}
		files[name] = b.String()
	}
	var ws strings.Builder
	ws.WriteString("name: big\nenvironments:\n  - name: development\n    data: synthetic\n    protection: open\nservices: [api]\nconfig:\n  layers:\n")
	for _, l := range layers {
		ws.WriteString("    - " + l + "\n")
	}
	files["envplane.yaml"] = ws.String()
	return files
}

func main() {
	server := flag.String("server", "http://127.0.0.1:8090", "envplane server on 127.0.0.1")
	token := flag.String("token", "", "admin token")
	mb := flag.Int("mb", 5, "workspace size in MB (1–15)")
	variants := flag.String("variants", "a,a,b", "variants to upload in order")
	setEnv := flag.String("set", "", "time PUT /environments/ENV/release alternating the first two releases")
	setRounds := flag.Int("set-rounds", 10, "PUTs to time (≤ 100)")
	sqlitePath := flag.String("sqlite", "", "SQLite database to measure")
	pgURL := flag.String("pg", "", "PostgreSQL database to measure")
	flag.Parse()
	if !strings.HasPrefix(*server, "http://127.0.0.1:") || *mb < 1 || *mb > 15 || *setRounds > 100 {
		log.Fatal("relgen: a server on 127.0.0.1, 1 ≤ mb ≤ 15, set-rounds ≤ 100")
	}
	size := func() string { return "" }
	if *sqlitePath != "" {
		db, err := sql.Open("sqlite", "file:"+*sqlitePath+"?mode=ro&_pragma=busy_timeout(5000)")
		if err != nil {
			log.Fatal(err)
		}
		size = func() string {
			var pages, free, ps int64
			_ = db.QueryRow("PRAGMA page_count").Scan(&pages)
			_ = db.QueryRow("PRAGMA freelist_count").Scan(&free)
			_ = db.QueryRow("PRAGMA page_size").Scan(&ps)
			return fmt.Sprintf(" db=%.2fMB", float64((pages-free)*ps)/1e6)
		}
	}
	if *pgURL != "" {
		db, err := sql.Open("pgx", *pgURL)
		if err != nil {
			log.Fatal(err)
		}
		size = func() string {
			var n int64
			_ = db.QueryRow(`SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE c.relkind = 'r' AND n.nspname = current_schema() AND c.relname IN ('releases', 'release_files', 'blobs')`).Scan(&n)
			return fmt.Sprintf(" db=%.2fMB", float64(n)/1e6)
		}
	}
	do := func(method, path string, body any) (int, []byte, time.Duration) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, *server+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+*token)
		req.Header.Set("Content-Type", "application/json")
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, out, time.Since(t0)
	}
	var ids []string
	fmt.Printf("start%s\n", size())
	for _, v := range strings.Split(*variants, ",") {
		files := workspace(*mb, v)
		status, out, d := do("POST", "/api/v1/releases", map[string]any{"files": files})
		var rel struct{ ID string }
		_ = json.Unmarshal(out, &rel)
		if status >= 300 {
			log.Fatalf("relgen: upload %s: %d %s", v, status, out)
		}
		if !slices.Contains(ids, rel.ID) {
			ids = append(ids, rel.ID)
		}
		fmt.Printf("upload variant=%s status=%d ms=%.1f id=%s%s\n", v, status, float64(d.Microseconds())/1000, rel.ID, size())
	}
	if *setEnv == "" {
		return
	}
	if len(ids) < 2 {
		log.Fatal("relgen: -set needs two distinct releases")
	}
	var ds []float64
	for i := 0; i < *setRounds+1; i++ {
		status, out, d := do("PUT", "/api/v1/environments/"+*setEnv+"/release", map[string]string{"release": ids[i%2]})
		if status != 200 {
			log.Fatalf("relgen: set release: %d %s", status, out)
		}
		if i > 0 { // the first may load the release
			ds = append(ds, float64(d.Microseconds())/1000)
		}
	}
	slices.Sort(ds)
	fmt.Printf("set-release mb=%d rounds=%d median_ms=%.2f min_ms=%.2f max_ms=%.2f\n", *mb, len(ds), ds[len(ds)/2], ds[0], ds[len(ds)-1])
}
