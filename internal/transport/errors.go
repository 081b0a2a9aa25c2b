package transport

import "errors"

// ErrTokenInvalid is returned (possibly wrapped) by Store.ConsumeEnrollToken
// when the token does not exist, its secret does not match, or it is expired,
// revoked or used up. Callers must not tell an agent which of these it was.
var ErrTokenInvalid = errors.New("enrolment token invalid, expired, revoked or used up")
