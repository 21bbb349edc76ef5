// Package flags loads, compiles and evaluates feature flags.
//
// Flag files are in flagd's flag definition format (JSON or YAML: `flags`,
// `$evaluators` with `$ref`, top-level `metadata`), extended with an optional
// per-flag `environments:` map of overrides, or in the seeds' shorthand
// (`default`, `environments: {env: bool}`, `rollout`). Parse reads the files
// once into a Document, keeping every problem with its place; Document.Set
// compiles one environment's flags into a Set.
//
// A Set is immutable and safe for concurrent use. Targeting rules (JSONLogic
// with flagd's `fractional`, `sem_ver`, `starts_with` and `ends_with`) are
// compiled once into closures, so evaluating walks no JSON. A flag that
// cannot be compiled does not take the others down: it evaluates to
// ERROR/PARSE_ERROR with the caller's default, as flagd does. Values,
// variants, reasons and error codes follow flagd's evaluator (see
// docs/FLAGS.md for the few documented differences).
package flags
