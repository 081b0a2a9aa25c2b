// Package web serves Vigil's HTTP API: the REST API under /api/v1/, its
// OpenAPI 3.1 document, the health checks /healthz and /readyz, Prometheus
// metrics at /metrics, and it mounts the agent transport handler at /agent/.
// The console (server-rendered HTML) will live here too; the only HTML it
// writes so far is a case's incident report, rendered by package cases and
// served under a CSP that lets nothing load or run.
//
// Only cmd/vigil imports web; agents must not.
//
// # Routes and permissions
//
// Every route is one entry of a single table (routes.go): method, pattern,
// the authz.Permission it needs, the handler, and the notes the OpenAPI
// document is generated from. Registration, the OpenAPI document and the
// route × role tests all read that table, so they cannot disagree. A route
// without a permission panics at New.
//
// # Authentication
//
// API clients send "Authorization: Bearer <secret>". The secret is hashed
// with authz.Hash and looked up with authz.Store.TokenByHash; unknown,
// revoked and expired tokens all get the same 401, and a role lacking the
// route's permission gets 403. /healthz, /readyz and /api/v1/openapi.json are
// public (authz.PermPublic). /metrics needs authz.PermSystemRead, which every
// role holds: a Prometheus scraper uses a viewer token. Routes under /agent/
// are not authenticated here: the transport handler authenticates agents by
// their client certificate (mTLS) or an enrolment token.
//
// # Untrusted input
//
// Request bodies are limited to 1 MiB and 8 levels of nesting, must be
// valid UTF-8 JSON with Content-Type application/json, and are decoded with
// unknown fields rejected. The one exception is a case file upload: raw
// application/octet-stream bytes up to the cases service's limit, never
// parsed, stored by SHA-256. Query parameters are checked against each route's declared list
// (unknown or repeated parameters are rejected) and parsed strictly: limits
// are ranges, times RFC 3339, states and levels from their enums. Every
// response is JSON (except /metrics, in the Prometheus text format) with
// X-Content-Type-Options: nosniff and Cache-Control: no-store; errors are
// {"code","message"} with codes from one table (errors.go).
//
// # Concurrency
//
// A Server is safe for concurrent use once New has returned; it holds no
// mutable state besides its metrics. The interfaces in Options must be safe
// for concurrent use.
package web
