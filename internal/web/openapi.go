package web

import (
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/authz"
)

// openAPI generates the OpenAPI 3.1 document from the route table. Schemas
// come from the Go types of the request and response notes by reflection.
func (s *Server) openAPI() []byte {
	g := &schemaGen{schemas: map[string]any{}}
	g.schemas["Error"] = map[string]any{
		"type":     "object",
		"required": []string{"code", "message"},
		"properties": map[string]any{
			"code":    map[string]any{"type": "string", "enum": errorCodes()},
			"message": map[string]any{"type": "string", "description": "safe to show a user"},
		},
	}
	responses := map[string]any{}
	for c, st := range codeStatus {
		responses[string(c)] = map[string]any{
			"description": http.StatusText(st),
			"content":     map[string]any{"application/json": map[string]any{"schema": ref("Error")}},
		}
	}

	paths := map[string]map[string]any{}
	for _, rt := range s.routes {
		op := map[string]any{
			"operationId":        operationID(rt),
			"summary":            rt.summary,
			"x-vigil-permission": string(rt.perm),
		}
		desc := "Requires permission `" + string(rt.perm) + "` (roles: " + rolesWith(rt.perm) + ")."
		if rt.perm == authz.PermPublic {
			desc = "Public: no token needed."
			op["security"] = []any{}
		}
		if rt.notes != "" {
			desc = rt.notes + "\n\n" + desc
		}
		op["description"] = desc

		var params []any
		for _, name := range pathParams(rt.pattern) {
			typ := "string"
			if name == "id" && intPathID(rt.pattern) {
				typ = "integer"
			}
			params = append(params, map[string]any{
				"name": name, "in": "path", "required": true, "schema": map[string]any{"type": typ},
			})
		}
		for _, p := range rt.query {
			params = append(params, queryParamDoc(p))
		}
		if params != nil {
			op["parameters"] = params
		}

		switch {
		case rt.bodyMedia != "":
			op["requestBody"] = map[string]any{
				"required": true,
				"content": map[string]any{rt.bodyMedia: map[string]any{
					"schema": map[string]any{"type": "string", "format": "binary"},
				}},
			}
		case rt.body != nil:
			op["requestBody"] = map[string]any{
				"required": true,
				"content": map[string]any{"application/json": map[string]any{
					"schema": g.schema(reflect.TypeOf(rt.body)),
				}},
			}
		}

		resps := map[string]any{}
		status := rt.status
		if status == 0 {
			status = http.StatusOK
		}
		switch {
		case rt.resp == nil:
			resps["204"] = map[string]any{"description": "Done"}
		case rt.text != "":
			resps[strconv.Itoa(status)] = map[string]any{"description": "OK",
				"content": map[string]any{rt.text: map[string]any{"schema": map[string]any{"type": "string"}}}}
		default:
			resps[strconv.Itoa(status)] = map[string]any{"description": http.StatusText(status),
				"content": map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.resp))}}}
		}
		errs := []Code{CodeInternal}
		if rt.perm != authz.PermPublic {
			errs = append(errs, CodeUnauthorized, CodeForbidden, CodeUnavailable)
		} else if rt.pattern == "/readyz" {
			errs = append(errs, CodeUnavailable)
		}
		if len(rt.query) > 0 || rt.body != nil || len(pathParams(rt.pattern)) > 0 || rt.method != "GET" {
			errs = append(errs, CodeBadRequest)
		}
		if len(pathParams(rt.pattern)) > 0 {
			errs = append(errs, CodeNotFound)
		}
		if rt.body != nil {
			errs = append(errs, CodeTooLarge, CodeUnsupportedMedia)
		}
		if rt.method == "POST" && len(pathParams(rt.pattern)) > 0 || rt.body != nil {
			errs = append(errs, CodeConflict)
		}
		for _, c := range errs {
			resps[strconv.Itoa(codeStatus[c])] = map[string]any{"$ref": "#/components/responses/" + string(c)}
		}
		op["responses"] = resps

		if paths[rt.pattern] == nil {
			paths[rt.pattern] = map[string]any{}
		}
		paths[rt.pattern][strings.ToLower(rt.method)] = op
	}

	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "Vigil API",
			"version": "v1",
			"description": "REST API of the Vigil EDR server. Authenticate with `Authorization: Bearer <token>`; " +
				"every operation names the permission it needs (`x-vigil-permission`). Errors are `{code, message}`. " +
				"Lists are newest first; pass `next_before` as `before` for the next page.",
		},
		"security": []any{map[string]any{"bearer": []string{}}},
		"paths":    paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
			"schemas":         g.schemas,
			"responses":       responses,
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic("web: encoding the OpenAPI document: " + err.Error())
	}
	return b
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func errorCodes() []string {
	var cs []string
	for c := range codeStatus {
		cs = append(cs, string(c))
	}
	sort.Strings(cs)
	return cs
}

func rolesWith(p authz.Permission) string {
	var rs []string
	for _, r := range []authz.Role{authz.RoleAdmin, authz.RoleAnalyst, authz.RoleViewer} {
		if r.Allows(p) {
			rs = append(rs, string(r))
		}
	}
	return strings.Join(rs, ", ")
}

func operationID(rt route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(rt.method))
	for _, seg := range strings.Split(strings.TrimPrefix(rt.pattern, "/api/v1"), "/") {
		seg = strings.Trim(seg, "{}")
		if seg == "" {
			continue
		}
		b.WriteByte('_')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(seg, "-", "_"), ".", "_"))
	}
	return b.String()
}

// pathParams lists the {name} segments of a pattern.
func pathParams(pattern string) []string {
	var out []string
	for _, seg := range strings.Split(pattern, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, strings.TrimSuffix(strings.Trim(seg, "{}"), "..."))
		}
	}
	return out
}

// intPathID reports whether the pattern's {id} is a row number rather than
// a string id; the handlers parse it with pathInt.
func intPathID(pattern string) bool {
	for _, p := range []string{"/api/v1/alerts/", "/api/v1/cases/", "/api/v1/events/", "/api/v1/suppressions/"} {
		if strings.HasPrefix(pattern, p) {
			return true
		}
	}
	return false
}

func queryParamDoc(p param) map[string]any {
	var sch map[string]any
	switch p.typ {
	case "integer":
		sch = map[string]any{"type": "integer", "format": "int64"}
		if p.name == "limit" {
			sch["minimum"], sch["maximum"] = 1, maxLimit
		}
	case "date-time":
		sch = map[string]any{"type": "string", "format": "date-time"}
	default:
		sch = map[string]any{"type": "string"}
		if p.enum != nil {
			sch["enum"] = p.enum
		}
	}
	if p.many {
		sch = map[string]any{"type": "array", "items": sch}
	}
	d := map[string]any{"name": p.name, "in": "query", "schema": sch, "description": p.doc}
	if p.many {
		d["style"], d["explode"] = "form", true
	}
	return d
}

// schemaGen turns Go types into JSON Schema, naming structs in
// components/schemas.
type schemaGen struct{ schemas map[string]any }

var (
	timeType  = reflect.TypeOf(time.Time{})
	stateType = reflect.TypeOf(alert.State(""))
	roleType  = reflect.TypeOf(authz.Role(""))
)

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	switch t {
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case stateType:
		return map[string]any{"type": "string", "enum": []string{"new", "acknowledged", "resolved", "false_positive"}}
	case roleType:
		return map[string]any{"type": "string", "enum": []string{"admin", "analyst", "viewer"}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.schema(t.Elem())
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32:
		return map[string]any{"type": "integer", "format": "int64"}
	case reflect.Float64, reflect.Float32:
		return map[string]any{"type": "number"}
	case reflect.Uint64, reflect.Uint, reflect.Uint32:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object"}
	case reflect.Struct:
		name := schemaName(t)
		if _, ok := g.schemas[name]; !ok {
			g.schemas[name] = nil // reserve: breaks cycles
			props := map[string]any{}
			var required []string
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				tag := f.Tag.Get("json")
				jname, opts, _ := strings.Cut(tag, ",")
				if jname == "-" || !f.IsExported() {
					continue
				}
				if jname == "" {
					jname = f.Name
				}
				props[jname] = g.schema(f.Type)
				if !strings.Contains(opts, "omitempty") {
					required = append(required, jname)
				}
			}
			obj := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
			if required != nil {
				obj["required"] = required
			}
			g.schemas[name] = obj
		}
		return ref(name)
	}
	return map[string]any{}
}

// schemaName is the component name of a DTO: alertJSON → Alert.
func schemaName(t reflect.Type) string {
	n := strings.TrimSuffix(t.Name(), "JSON")
	if n == "" {
		return "Object"
	}
	r := []rune(n)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}
