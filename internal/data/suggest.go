package data

import (
	"regexp"
	"strings"
	"sync"
)

var (
	emailRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[a-zA-Z]{2,}$`) })
	phoneRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\+?[0-9][0-9 ().-]{6,18}[0-9]$`) })
	ssnRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]{3}-[0-9]{2}-[0-9]{4}$`) })
	cardRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9][0-9 -]{11,21}[0-9]$`) })
	ibanRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Z]{2}[0-9]{2} ?[A-Z0-9 ]{11,34}$`) })
	ipv4RE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]{1,3}\.){3}[0-9]{1,3}(/[0-9]{1,2})?$`) })
	ipv6RE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-fA-F:]*:[0-9a-fA-F:]*:[0-9a-fA-F:.]*$`) })
)

// nameHints map words in a column's name to a rule, first match wins.
var nameHints = []struct{ words, rule, why string }{
	{"email mail", "{fake: email}", "name says e-mail"},
	{"ssn social_security national_id tax_id", "{fake: ssn}", "name says national ID"},
	{"iban", "{fake: iban}", "name says IBAN"},
	{"card credit_card card_number pan", "{fake: card}", "name says card number"},
	{"phone mobile tel telephone fax", "{fake: phone}", "name says phone"},
	{"first_name firstname given_name", "{fake: first_name}", "name says first name"},
	{"last_name lastname surname family_name", "{fake: last_name}", "name says last name"},
	{"full_name fullname name display_name contact_name", "{fake: name}", "name says person's name"},
	{"username login user_name handle", "{fake: username}", "name says user name"},
	{"address street address_line address1 address2", "{fake: address}", "name says address"},
	{"city town", "{fake: city}", "name says city"},
	{"zip zipcode postcode postal_code", "{fake: zip}", "name says postal code"},
	{"ip ip_address ipaddr remote_addr", "{fake: ip}", "name says IP address"},
	{"password password_hash secret token api_key", "{hash: hex}", "name says credential"},
	{"birth_date birthdate dob date_of_birth birthday", "{noise: 365d}", "name says birth date"},
	{"salary income", "{noise: 0.1}", "name says income"},
}

// Suggest proposes a rule for a column from its name, type and sampled
// values, and says why.
func Suggest(t *Table, col Column, samples []string) (string, string) {
	for _, fk := range t.ForeignKeys {
		for _, c := range fk.Columns {
			if c == col.Name {
				return "keep", "foreign key to " + fk.RefTable
			}
		}
	}
	for _, c := range t.PrimaryKey {
		if c == col.Name {
			return "keep", "primary key"
		}
	}
	name := strings.ToLower(col.Name)
	if col.Category == "S" {
		if r, why := fromSamples(samples); r != "" {
			return r, why
		}
	}
	for _, h := range nameHints {
		for _, w := range strings.Fields(h.words) {
			if name == w || strings.HasSuffix(name, "_"+w) || strings.HasPrefix(name, w+"_") {
				if fits(mustRule(h.rule), t, col) == "" {
					return h.rule, h.why
				}
			}
		}
	}
	switch {
	case col.TypName == "inet" || col.TypName == "cidr":
		return "null", "IP address"
	case col.TypName == "json" || col.TypName == "jsonb":
		return "{fixed: {}}", "structured data may hold anything"
	case col.Category == "S" && isFreeText(samples):
		return "{hash: hex}", "free text"
	case col.Category == "S" && (strings.Contains(name, "note") || strings.Contains(name, "comment") || strings.Contains(name, "description") || strings.Contains(name, "message")):
		return "{hash: hex}", "free text"
	}
	return "keep", ""
}

func mustRule(s string) *Rule {
	r, err := ParseRules("", []byte("key: K\ntables: {t: {c: "+s+"}}"))
	if err != nil {
		panic(err)
	}
	return r.Tables["t"]["c"]
}

// fromSamples names the kind most samples are (at least 80 %).
func fromSamples(samples []string) (string, string) {
	if len(samples) == 0 {
		return "", ""
	}
	kinds := []struct {
		rule, why string
		ok        func(string) bool
	}{
		{"{fake: email}", "values are e-mail addresses", emailRE().MatchString},
		{"{fake: ssn}", "values are SSNs", ssnRE().MatchString},
		{"{fake: iban}", "values are IBANs", func(s string) bool { return ibanRE().MatchString(s) && ibanOK(s) }},
		{"{fake: card}", "values are card numbers", func(s string) bool { return cardRE().MatchString(s) && luhnOK(s) }},
		{"{fake: ip}", "values are IP addresses", func(s string) bool { return ipv4RE().MatchString(s) || ipv6RE().MatchString(s) }},
		{"{fake: phone}", "values are phone numbers", phoneRE().MatchString},
	}
	for _, k := range kinds {
		n := 0
		for _, s := range samples {
			if k.ok(strings.TrimSpace(s)) {
				n++
			}
		}
		if n*5 >= len(samples)*4 {
			return k.rule, k.why
		}
	}
	return "", ""
}

func isFreeText(samples []string) bool {
	if len(samples) == 0 {
		return false
	}
	n := 0
	for _, s := range samples {
		if len(s) > 30 && strings.Count(s, " ") >= 3 {
			n++
		}
	}
	return n*2 >= len(samples)
}

func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		if r == ' ' || r == '-' {
			return -1
		}
		return 'x'
	}, s)
}

func luhnOK(s string) bool {
	d := digits(s)
	if strings.Contains(d, "x") || len(d) < 13 || len(d) > 19 {
		return false
	}
	return luhn(d[:len(d)-1]) == d
}

func ibanOK(s string) bool {
	s = strings.ReplaceAll(s, " ", "")
	if len(s) < 15 {
		return false
	}
	r := s[4:] + s[:4]
	mod := 0
	for _, c := range r {
		switch {
		case c >= '0' && c <= '9':
			mod = (mod*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			v := int(c-'A') + 10
			mod = (mod*100 + v) % 97
		default:
			return false
		}
	}
	return mod == 1
}
