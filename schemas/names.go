package schemas

import (
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// namesIn resolves the fields of "required" and "additionalProperties"
// failures on doc exactly: from the failing schema object (found in the
// registry's schema documents by the error's absolute keyword location)
// and the failing instance object.
func (r *Registry) namesIn(doc any) nameResolver {
	return func(e *jsonschema.ValidationError, keyword string) ([]string, bool) {
		url, ptr, _ := strings.Cut(e.AbsoluteKeywordLocation, "#")
		sch, ok := atPointer(r.docs[url], ptr[:max(strings.LastIndexByte(ptr, '/'), 0)]).(map[string]any)
		if !ok {
			return nil, false
		}
		inst, ok := atPointer(doc, e.InstanceLocation).(map[string]any)
		if !ok {
			return nil, false
		}
		var names []string
		switch keyword {
		case "required":
			req, _ := sch["required"].([]any)
			for _, n := range req {
				name, ok := n.(string)
				if !ok {
					return nil, false
				}
				if _, present := inst[name]; !present {
					names = append(names, name)
				}
			}
		case "additionalProperties":
			if _, ok := sch["patternProperties"]; ok || sch["additionalProperties"] != false {
				return nil, false
			}
			props, _ := sch["properties"].(map[string]any)
			for name := range inst {
				if _, allowed := props[name]; !allowed {
					names = append(names, name)
				}
			}
		default:
			return nil, false
		}
		return names, len(names) > 0
	}
}

// atPointer returns the value at the JSON Pointer ptr in v, nil when there
// is none.
func atPointer(v any, ptr string) any {
	if ptr == "" {
		return v
	}
	if ptr[0] != '/' {
		return nil
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch c := v.(type) {
		case map[string]any:
			v = c[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
	}
	return v
}
