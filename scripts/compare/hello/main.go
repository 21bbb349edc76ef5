// Command hello is the comparison program for `envplane version` in
// scripts/bench-compare-cli: the smallest Go program that prints a line.
package main

import "os"

func main() { os.Stdout.WriteString("hello, world\n") }
