package vuln

import (
	"fmt"
	"math"
	"strings"
)

// CVSS3 computes the base score of a CVSS v3.0 or v3.1 vector
// ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" is 9.8) with the
// specification's formula and round-up. Temporal and environmental
// metrics are allowed and ignored. An error says which metric is wrong.
func CVSS3(vector string) (float64, error) {
	parts := strings.Split(vector, "/")
	if len(parts) < 9 || (parts[0] != "CVSS:3.1" && parts[0] != "CVSS:3.0") {
		return 0, fmt.Errorf("not a CVSS v3 vector")
	}
	weights := map[string]map[string]float64{
		"AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
		"AC": {"L": 0.77, "H": 0.44},
		"PR": {"N": 0.85, "L": 0.62, "H": 0.27},
		"UI": {"N": 0.85, "R": 0.62},
		"S":  {"U": 0, "C": 1},
		"C":  {"H": 0.56, "L": 0.22, "N": 0},
		"I":  {"H": 0.56, "L": 0.22, "N": 0},
		"A":  {"H": 0.56, "L": 0.22, "N": 0},
	}
	m := map[string]float64{}
	val := map[string]string{}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, ":")
		if !ok {
			return 0, fmt.Errorf("metric %q", clip(p, 20))
		}
		w, base := weights[k]
		if !base {
			continue // temporal or environmental
		}
		x, ok := w[v]
		if !ok {
			return 0, fmt.Errorf("metric %s value %q", k, clip(v, 20))
		}
		if _, dup := m[k]; dup {
			return 0, fmt.Errorf("metric %s given twice", k)
		}
		m[k], val[k] = x, v
	}
	for k := range weights {
		if _, ok := m[k]; !ok {
			return 0, fmt.Errorf("metric %s missing", k)
		}
	}
	changed := val["S"] == "C"
	pr := m["PR"]
	if changed && val["PR"] == "L" {
		pr = 0.68
	} else if changed && val["PR"] == "H" {
		pr = 0.5
	}
	iss := 1 - (1-m["C"])*(1-m["I"])*(1-m["A"])
	impact := 6.42 * iss
	if changed {
		impact = 7.52*(iss-0.029) - 3.25*math.Pow(iss-0.02, 15)
	}
	if impact <= 0 {
		return 0, nil
	}
	expl := 8.22 * m["AV"] * m["AC"] * pr * m["UI"]
	if changed {
		return roundUp(math.Min(1.08*(impact+expl), 10)), nil
	}
	return roundUp(math.Min(impact+expl, 10)), nil
}

// roundUp is CVSS v3.1's Roundup: the smallest one-decimal number not
// below x, computed on integers to avoid floating-point surprises.
func roundUp(x float64) float64 {
	n := int64(math.Round(x * 100000))
	if n%10000 == 0 {
		return float64(n) / 100000
	}
	return float64(n/10000+1) / 10
}

// ScoreLevel maps a CVSS base score to its qualitative rating.
func ScoreLevel(s float64) Level {
	switch {
	case s >= 9:
		return Critical
	case s >= 7:
		return High
	case s >= 4:
		return Medium
	case s > 0:
		return Low
	}
	return Negligible
}

// WordLevel maps a severity word (Ubuntu's priorities, the Debian
// tracker's urgencies, GHSA's levels) to a Level; "unimportant" is
// Negligible, a trailing '*' (the tracker's "low**") is ignored, and
// anything unknown ("not yet assigned", "end-of-life") is Unknown.
func WordLevel(w string) Level {
	switch strings.ToLower(strings.TrimRight(strings.TrimSpace(w), "*")) {
	case "critical":
		return Critical
	case "high", "important":
		return High
	case "medium", "moderate":
		return Medium
	case "low":
		return Low
	case "negligible", "unimportant":
		return Negligible
	}
	return Unknown
}
