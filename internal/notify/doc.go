// Package notify wakes someone up: it routes new alerts (and, where a route
// asks for it, alert state changes) to notification channels, delivers them
// with retries from a persisted outbox, escalates alerts nobody acknowledged
// in time, and sends test messages on demand.
//
// Channels are a generic webhook (JSON, HMAC-SHA256 signed), email (SMTP,
// STARTTLS required unless explicitly disabled for a local relay), and the
// incoming-webhook formats of Slack, Microsoft Teams and Mattermost. Every
// outbound connection, HTTP and SMTP, goes through a [Policy] that checks
// the address actually dialled (see ssrf.go), and HTTP redirects are never
// followed.
//
// Only cmd/vigil (wiring) and package web (through its own interface)
// import notify; agents must not.
//
// # Data flow and guarantees
//
// The storage backend writes an alert change (alert created, state changed)
// in the same transaction as the alert itself (the transactional outbox
// pattern; see [Store]). The [Notifier]'s loop reads pending changes, applies
// the routes, and in one transaction enqueues a delivery per matching
// channel, schedules escalations and deletes the changes it handled. So an
// alert that is committed is routed exactly once, even across crashes.
//
// A delivery is delivered at least once: it is claimed with a lease, sent,
// then marked sent. A crash after sending and before marking re-sends it
// after the lease expires; webhook receivers deduplicate with the
// X-Vigil-Delivery header. Failures are retried with exponential back-off
// and jitter until MaxAttempts; a permanent failure (a 4xx answer other
// than 408/429, a blocked address, a redirect, a missing channel) stops at
// once. Sent and failed deliveries are kept for a week, then pruned.
//
// An escalation is scheduled when a route with EscalateAfter matches a new
// alert. When it falls due and the alert is still new (nobody acknowledged,
// resolved or closed it), a delivery of kind "alert.escalated" is enqueued
// to the route's escalation channels.
//
// # Webhook signature
//
// A generic webhook POSTs the JSON document described by [WebhookBody] with
// these headers:
//
//	Content-Type:      application/json
//	X-Vigil-Event:     alert.created | alert.escalated | alert.state_changed | test
//	X-Vigil-Delivery:  the delivery id (the same on every retry)
//	X-Vigil-Timestamp: Unix time in seconds when this attempt was signed
//	X-Vigil-Signature: v1=<hex of HMAC-SHA256(secret, timestamp + "." + body)>
//
// A receiver verifies it by computing HMAC-SHA256 with the channel's secret
// over the decimal timestamp header, one ".", and the raw request body
// bytes; comparing the hex digest with the v1 value in constant time; and
// rejecting timestamps more than five minutes from its clock (replays).
// [VerifySignature] does exactly that.
//
// # Untrusted text
//
// Rule titles (from uploaded rules), host names, command lines and other
// field values are attacker-controlled. Before any format sees them they
// are made valid UTF-8, control and invisible format characters (bidi
// overrides, zero-width characters) are replaced, and they are clipped.
// Each format then escapes them for its own syntax: Slack's &, < and >
// entities with mrkdwn off and plain-text blocks; Markdown backslash
// escapes with mentions and bare links broken for Teams and Mattermost;
// and for email, headers that never contain CR or LF (RFC 2047 encoded
// subjects) and a quoted-printable body. format_test.go fuzzes all of them.
//
// # Concurrency
//
// A Notifier is safe for concurrent use. Run is one loop per process: it
// routes, escalates and delivers (up to Options.Parallel deliveries at
// once). Several processes on one database do not duplicate work: a batch
// of changes or escalations is consumed by the transaction that enqueues
// its deliveries, which fails (and is retried with fresh data) when another
// process consumed any of them first, and deliveries are claimed with a
// lease.
package notify
