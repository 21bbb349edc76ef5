package schema

import "encoding/json"

func jsonQuote(s string) ([]byte, error) { return json.Marshal(s) }
