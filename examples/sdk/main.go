// Command sdk is an example application that reads its configuration from an
// envplane server with the Go SDK and follows changes as they are pushed.
//
//	ENVPLANE_SERVER=http://127.0.0.1:8080 ENVPLANE_TOKEN=ep_… go run ./examples/sdk -env development
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"

	envplane "github.com/envplane/envplane/sdk"
)

func main() {
	env := flag.String("env", "development", "environment to read")
	service := flag.String("service", "", "service whose layers to add")
	watch := flag.Bool("watch", true, "keep running and print every change")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	client, err := envplane.New(os.Getenv("ENVPLANE_SERVER"), os.Getenv("ENVPLANE_TOKEN"), *env)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	show := func(cfg *envplane.Config) {
		port, _ := cfg.Int("server.port")
		level, _ := cfg.String("logging.level")
		fmt.Printf("config %s: server.port=%d logging.level=%s\n", cfg.ETag, port, level)
	}
	if !*watch {
		cfg, err := client.Config(ctx, *service)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			if errors.Is(err, envplane.ErrUnauthorized) {
				fmt.Fprintln(os.Stderr, "set ENVPLANE_TOKEN to an SDK key or token for this environment")
			}
			os.Exit(1)
		}
		show(cfg)
		return
	}
	if err := client.Watch(ctx, *service, show); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
