package check

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Severity orders findings: an Error keeps the announcer from doing its job on this node, a
// Warning is a risk or a degraded mode, Info is context (what was checked, what could not be).
type Severity int

// The severities, from the least to the most serious.
const (
	Info Severity = iota
	Warning
	Error
)

func (s Severity) String() string {
	switch s {
	case Info:
		return "info"
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// ParseSeverity reads "info", "warning" or "error".
func ParseSeverity(s string) (Severity, error) {
	for _, v := range []Severity{Info, Warning, Error} {
		if strings.EqualFold(s, v.String()) {
			return v, nil
		}
	}
	return 0, fmt.Errorf("severity %q: want info, warning or error", s)
}

// MarshalText makes a Severity its word in JSON.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Finding is one thing the check found.
type Finding struct {
	Severity Severity `json:"severity"`
	// Reason is a short CamelCase name, stable across releases, usable as an event reason
	// ("IPVSWithoutStrictARP", "MissingNetRaw").
	Reason string `json:"reason"`
	// Message says what was found, with the values (interface, MAC, address, sysctl value).
	Message string `json:"message"`
	// Fix says what to do; empty for Info findings that need nothing.
	Fix string `json:"fix,omitempty"`
	// Data holds the values of Message by name ("interface", "mac", "address", "sysctl",
	// "value", ...), for machines.
	Data map[string]string `json:"data,omitempty"`
}

// EventType is the Kubernetes event type of the finding: "Warning" for warnings and errors,
// "Normal" for information.
func (f Finding) EventType() string {
	if f.Severity >= Warning {
		return "Warning"
	}
	return "Normal"
}

// EventMessage is the finding in one line for a Kubernetes event: the message and the fix.
func (f Finding) EventMessage() string {
	if f.Fix == "" {
		return f.Message
	}
	return f.Message + ". Fix: " + f.Fix
}

// String is the finding for people: "error MissingNetRaw: message. Fix: fix".
func (f Finding) String() string {
	return fmt.Sprintf("%s %s: %s", f.Severity, f.Reason, f.EventMessage())
}

// Worst returns the highest severity among findings, and false when there are none.
func Worst(findings []Finding) (Severity, bool) {
	if len(findings) == 0 {
		return Info, false
	}
	return slices.MaxFunc(findings, func(a, b Finding) int { return cmp.Compare(a.Severity, b.Severity) }).Severity, true
}

// sortFindings orders findings most serious first, then by reason and message, so that output
// and tests are stable.
func sortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(b.Severity, a.Severity), strings.Compare(a.Reason, b.Reason), strings.Compare(a.Message, b.Message))
	})
}

// data builds a Finding's Data from key/value pairs, skipping empty values.
func data(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			m[kv[i]] = kv[i+1]
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}
