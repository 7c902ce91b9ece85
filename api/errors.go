package api

import (
	"errors"
	"net/http"

	"github.com/oak-engine/oak/engine"
	"github.com/oak-engine/oak/storage/image"
	"github.com/oak-engine/oak/storage/volume"
)

// Error codes of ErrorBody.Code. A client turns the ones that stand for an
// engine error back into it (see Error.Unwrap), so that a front end tells
// the same errors apart over the API as in-process.
const (
	CodeBadRequest           = "bad_request"            // 400: the request itself (a field, a parameter, the body)
	CodeNoSuchContainer      = "no_such_container"      // 404
	CodeNoSuchImage          = "no_such_image"          // 404
	CodeNoSuchVolume         = "no_such_volume"         // 404
	CodeNoSuchObject         = "no_such_object"         // 404
	CodeNoSuchFunction       = "no_such_function"       // 404
	CodeNoSuchTenant         = "no_such_tenant"         // 404 (to root: tenants are not told of tenants)
	CodeNoSuchFactory        = "no_such_factory"        // 404
	CodeNotFound             = "not_found"              // 404: no such route
	CodeMethodNotAllowed     = "method_not_allowed"     // 405
	CodeCommandNotFound      = "command_not_found"      // 400: the command is not in the image
	CodeCommandNotExecutable = "command_not_executable" // 400: it is there but cannot be run
	CodeUnauthorized         = "unauthorized"           // 401: the caller's identity is unknown
	CodeForbidden            = "forbidden"              // 403: the caller may not use this route (see auth.go)
	CodeRefused              = "refused"                // 400 on create, 409 on a verb: the engine refused it
	CodeTooLarge             = "too_large"              // 413: the body is above MaxBody
	CodeTimeout              = "timeout"                // 408: the body did not arrive within the server's BodyTimeout
	CodeInternal             = "internal"               // 500: the daemon failed
)

// codeSentinels maps codes to the engine errors they stand for.
var codeSentinels = map[string]error{
	CodeNoSuchContainer:      engine.ErrNoSuchContainer,
	CodeNoSuchImage:          image.ErrNotFound,
	CodeNoSuchVolume:         volume.ErrNotFound,
	CodeNoSuchObject:         engine.ErrNoSuchObject,
	CodeNoSuchFunction:       engine.ErrNoSuchFunction,
	CodeNoSuchTenant:         engine.ErrNoSuchTenant,
	CodeNoSuchFactory:        engine.ErrNoSuchFactory,
	CodeCommandNotFound:      engine.ErrCommandNotFound,
	CodeCommandNotExecutable: engine.ErrCommandNotExecutable,
}

// classify gives the status and code of an error a handler got. The
// engine's refusals carry no kind of their own; they are a bad request on
// create (the request asked for something the engine does not do) and a
// conflict on a verb on an existing object (not running, still running,
// a name in use).
func classify(err error, create bool) (int, string) {
	var fe *FieldError
	var ae *authError
	switch {
	case errors.As(err, &ae):
		return ae.status, ae.code
	case errors.As(err, &fe):
		return http.StatusBadRequest, CodeBadRequest
	case errors.Is(err, engine.ErrNoSuchContainer):
		return http.StatusNotFound, CodeNoSuchContainer
	case errors.Is(err, image.ErrNotFound):
		return http.StatusNotFound, CodeNoSuchImage
	case errors.Is(err, volume.ErrNotFound):
		return http.StatusNotFound, CodeNoSuchVolume
	case errors.Is(err, engine.ErrNoSuchObject):
		return http.StatusNotFound, CodeNoSuchObject
	case errors.Is(err, engine.ErrNoSuchFunction):
		return http.StatusNotFound, CodeNoSuchFunction
	case errors.Is(err, engine.ErrNoSuchTenant):
		return http.StatusNotFound, CodeNoSuchTenant
	case errors.Is(err, engine.ErrNoSuchFactory):
		return http.StatusNotFound, CodeNoSuchFactory
	case errors.Is(err, engine.ErrCommandNotFound):
		return http.StatusBadRequest, CodeCommandNotFound
	case errors.Is(err, engine.ErrCommandNotExecutable):
		return http.StatusBadRequest, CodeCommandNotExecutable
	case create:
		return http.StatusBadRequest, CodeRefused
	}
	return http.StatusConflict, CodeRefused
}

// Error is an error answer as a client sees it.
type Error struct {
	Status  int    // the HTTP status
	Code    string // ErrorBody.Code
	Message string // ErrorBody.Error, the engine's words
}

func (e *Error) Error() string { return e.Message }

// Unwrap is the engine error Code stands for, if any, for errors.Is.
func (e *Error) Unwrap() error { return codeSentinels[e.Code] }
