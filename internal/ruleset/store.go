package ruleset

import "context"

// Store persists which rules an operator disabled; everything else about a
// rule comes from its file.
type Store interface {
	DisabledRules(ctx context.Context) ([]string, error)
	SetRuleEnabled(ctx context.Context, ruleID string, enabled bool) error
}
