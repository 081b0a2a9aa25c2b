package winevent

import (
	"encoding/json"
	"slices"
	"strconv"
	"sync"

	"github.com/vigil-edr/vigil/internal/event"
)

var flattenerPool = sync.Pool{New: func() any { return new(Flattener) }}

// FromJSON fills ev (after resetting it) from the JSON rendering of one
// Windows event as SigmaHQ's regression data and evtx_dump write it:
//
//	{"Event": {"#attributes": {…}, "System": {…}, "EventData": {…}}}
//
// Element attributes sit under "#attributes" and element text under "#text"
// when an element has both. Decode with json.Decoder.UseNumber so numbers keep
// their exact text; null values leave the field out and arrays become
// repeated fields. The event is classified with Classify. FromJSON returns
// false, leaving ev reset, when m is not a Windows event rendering.
func FromJSON(m map[string]any, ev *event.Event) bool {
	ev.Reset()
	root, ok := m["Event"].(map[string]any)
	if !ok {
		return false
	}
	if _, ok := root["System"].(map[string]any); !ok {
		return false
	}
	f := flattenerPool.Get().(*Flattener)
	defer flattenerPool.Put(f)
	f.Reset()
	walkJSON(f, "Event", root)
	f.Finish(ev)
	Classify(ev)
	return true
}

// sectionOrder puts the sections in the order the XML has them; any other
// keys follow in sorted order.
var sectionOrder = []string{"System", "EventData", "UserData"}

func walkJSON(f *Flattener, name string, v any) {
	switch v := v.(type) {
	case nil:
		f.Start(name)
		f.Null()
		f.End()
	case []any:
		for _, item := range v {
			walkJSON(f, name, item)
		}
	case map[string]any:
		f.Start(name)
		if attrs, ok := v["#attributes"].(map[string]any); ok {
			for _, k := range sortedKeys(attrs) {
				val := attrs[k]
				if val == nil {
					continue
				}
				if s, ok := scalarText(val); ok {
					f.AttrString(k, s)
				}
			}
		}
		if t, ok := v["#text"]; ok {
			jsonText(f, t)
		}
		if f.Depth() == 1 { // the Event element: sections in XML order
			for _, k := range sectionOrder {
				if c, ok := v[k]; ok {
					walkJSON(f, k, c)
				}
			}
		}
		for _, k := range sortedKeys(v) {
			if k == "#attributes" || k == "#text" || (f.Depth() == 1 && slices.Contains(sectionOrder, k)) {
				continue
			}
			walkJSON(f, k, v[k])
		}
		f.End()
	default:
		f.Start(name)
		jsonText(f, v)
		f.End()
	}
}

func jsonText(f *Flattener, v any) {
	switch v := v.(type) {
	case nil:
		f.Null()
	case []any:
		for i, item := range v {
			if i > 0 {
				f.ArraySep()
			}
			jsonText(f, item)
		}
	default:
		if s, ok := scalarText(v); ok {
			f.TextString(s)
		}
	}
}

func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
