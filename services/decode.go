package services

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// A Tree is a decoded JSON or YAML document before it is given a Go type:
// map[string]any, []any, string, json.Number, bool or nil. Setups and the
// agent's configuration file are parsed into a Tree, then decoded strictly
// into their Go types by DecodeTree, so that both are held to the same
// rules and every problem is reported with its field path.
type Tree = any

// Parse reads payload as a JSON document, or as YAML when it does not
// start with '{' or '['. YAML anchors and aliases are accepted only while
// the document they expand to stays under limit bytes (an alias bomb is a
// few hundred bytes that expand to gigabytes); limit <= 0 refuses aliases
// outright. Only string keys, finite numbers and the JSON types are
// accepted.
func Parse(payload []byte, limit int) (Tree, error) {
	b := bytes.TrimSpace(payload)
	if len(b) > 0 && (b[0] == '{' || b[0] == '[') {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
		}
		if dec.More() {
			return nil, errors.New("not valid JSON: data after the document")
		}
		return v, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("neither JSON nor YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil
	}
	c := yamlConv{limit: limit}
	return c.node(doc.Content[0], "")
}

// yamlConv turns YAML nodes into a Tree, counting the size of what aliases
// expand to.
type yamlConv struct {
	limit int
	size  int
	alias bool // inside an alias's expansion
	depth int
	// expanding are the anchored nodes whose alias is being expanded: an
	// alias inside its own anchor ("s: &s [*s]") would expand forever.
	expanding map[*yaml.Node]bool
}

// maxYAMLDepth bounds the nesting of a YAML document: no setup needs more,
// and the field paths of errors grow with it.
const maxYAMLDepth = 64

func (c *yamlConv) grow(n int, at string) error {
	c.size += n
	if c.alias && c.limit > 0 && c.size > c.limit {
		return fmt.Errorf("%sYAML aliases expand the document past %d bytes", at, c.limit)
	}
	return nil
}

func (c *yamlConv) node(n *yaml.Node, path string) (Tree, error) {
	at := ""
	if path != "" {
		at = path + ": "
	}
	c.depth++
	defer func() { c.depth-- }()
	if c.depth > maxYAMLDepth {
		return nil, fmt.Errorf("%sYAML nested deeper than %d levels", at, maxYAMLDepth)
	}
	switch n.Kind {
	case yaml.AliasNode:
		if c.limit <= 0 {
			return nil, fmt.Errorf("%sYAML aliases (*%s) are not accepted here", at, n.Value)
		}
		if c.expanding[n.Alias] {
			return nil, fmt.Errorf("%sthe YAML alias *%s is inside its own anchor", at, n.Value)
		}
		if c.expanding == nil {
			c.expanding = map[*yaml.Node]bool{}
		}
		was := c.alias
		c.alias, c.expanding[n.Alias] = true, true
		v, err := c.node(n.Alias, path)
		c.alias, c.expanding[n.Alias] = was, false
		return v, err
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.node(n.Content[0], path)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || (k.Tag != "!!str" && k.Tag != "!!int" && k.Tag != "!!bool") {
				if k.Tag == "!!merge" {
					return nil, fmt.Errorf("%sYAML merge keys (<<) are not accepted", at)
				}
				return nil, fmt.Errorf("%sline %d: keys must be plain words", at, k.Line)
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("%s: line %d: the key appears twice", join(path, k.Value), k.Line)
			}
			if err := c.grow(len(k.Value)+4, at); err != nil {
				return nil, err
			}
			val, err := c.node(v, join(path, k.Value))
			if err != nil {
				return nil, err
			}
			m[k.Value] = val
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for i, e := range n.Content {
			if err := c.grow(2, at); err != nil {
				return nil, err
			}
			v, err := c.node(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		if err := c.grow(len(n.Value)+2, at); err != nil {
			return nil, err
		}
		return yamlScalar(n, at)
	}
	return nil, fmt.Errorf("%sline %d: unsupported YAML node", at, n.Line)
}

func yamlScalar(n *yaml.Node, at string) (Tree, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("%sline %d: %v", at, n.Line, err)
		}
		return b, nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			var u uint64
			if err2 := n.Decode(&u); err2 != nil {
				return nil, fmt.Errorf("%sline %d: %q is out of range", at, n.Line, n.Value)
			}
			return json.Number(strconv.FormatUint(u, 10)), nil
		}
		return json.Number(strconv.FormatInt(i, 10)), nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("%sline %d: %v", at, n.Line, err)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%sline %d: numbers must be finite, not %s", at, n.Line, n.Value)
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
	case "!!str", "!!timestamp", "!!binary":
		return n.Value, nil
	}
	return nil, fmt.Errorf("%sline %d: unsupported YAML tag %s", at, n.Line, n.Tag)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Decode parses payload (see Parse) and decodes it strictly into v, a
// pointer: see DecodeTree. A malformed document is one error without a
// field.
func Decode(payload []byte, limit int, v any) Errors {
	t, err := Parse(payload, limit)
	if err != nil {
		return Errors{{Code: CodeMalformed, Message: err.Error()}}
	}
	return DecodeTree(t, v, "")
}

// DecodeTree decodes t into v, a pointer to a struct (or any type), and
// returns every problem, each with its field path under prefix
// ("output[0].pin"), or nil. The rules are stricter than encoding/json's,
// for payloads that drive hardware:
//
//   - member names match a field's json tag exactly (not case-folded);
//     an unknown member is an error naming the members there are;
//   - a fractional number does not go into an integer, a number does not
//     go into a bool, a map does not go into a list, null goes only into a
//     pointer, a map, a list or an interface;
//   - integers are range-checked for their Go type;
//   - a field tagged `rollcall:"required"` must be present;
//   - types with UnmarshalJSON or UnmarshalText decode themselves.
//
// Fields the document does not mention keep the value v had, so callers
// fill defaults first and an explicit zero stays visible to validation.
func DecodeTree(t Tree, v any, prefix string) Errors {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return Errors{{Code: CodeInternal, Message: fmt.Sprintf("decode into %T: not a pointer", v)}}
	}
	d := decoder{}
	d.value(t, rv.Elem(), prefix)
	return d.errs
}

type decoder struct{ errs Errors }

func (d *decoder) bad(field, format string, a ...any) {
	d.errs = append(d.errs, Error{Code: CodeMalformed, Field: field, Message: fmt.Sprintf(format, a...)})
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	durationType    = reflect.TypeFor[time.Duration]()
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
)

func (d *decoder) value(t Tree, v reflect.Value, field string) {
	typ := v.Type()
	if typ == rawMessageType {
		b, err := json.Marshal(t)
		if err != nil {
			d.bad(field, "%v", err)
			return
		}
		v.SetBytes(b)
		return
	}
	if typ.Kind() != reflect.Pointer && reflect.PointerTo(typ).Implements(jsonUnmarshaler) {
		if t == nil {
			d.bad(field, "must be %s, not null", describeType(typ))
			return
		}
		b, err := json.Marshal(t)
		if err == nil {
			err = v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(b)
		}
		if err != nil {
			d.bad(field, "%s", strings.TrimPrefix(err.Error(), "json: "))
		}
		return
	}
	if typ == durationType {
		s, ok := t.(string)
		if !ok {
			d.bad(field, "must be a duration such as \"30s\", not %s", show(t))
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.bad(field, "%q is not a duration such as \"30s\"", s)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	if typ.Kind() != reflect.Pointer && reflect.PointerTo(typ).Implements(textUnmarshaler) {
		s, ok := t.(string)
		if !ok {
			d.bad(field, "must be a string, not %s", show(t))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.bad(field, "%v", err)
		}
		return
	}
	switch typ.Kind() {
	case reflect.Pointer:
		if t == nil {
			v.SetZero()
			return
		}
		p := reflect.New(typ.Elem())
		if !v.IsNil() {
			p.Elem().Set(v.Elem())
		}
		n := len(d.errs)
		d.value(t, p.Elem(), field)
		if len(d.errs) == n {
			v.Set(p)
		}
	case reflect.Interface:
		if t == nil {
			v.SetZero()
			return
		}
		if !reflect.TypeOf(t).AssignableTo(typ) {
			d.bad(field, "must be %s", typ)
			return
		}
		v.Set(reflect.ValueOf(t))
	case reflect.Struct:
		m, ok := t.(map[string]any)
		if !ok {
			d.bad(field, "must be an object, not %s", show(t))
			return
		}
		d.object(m, v, field)
	case reflect.Slice:
		if t == nil {
			v.SetZero()
			return
		}
		s, ok := t.([]any)
		if !ok {
			d.bad(field, "must be a list, not %s", show(t))
			return
		}
		out := reflect.MakeSlice(typ, len(s), len(s))
		for i, e := range s {
			d.value(e, out.Index(i), fmt.Sprintf("%s[%d]", field, i))
		}
		v.Set(out)
	case reflect.Map:
		if t == nil {
			v.SetZero()
			return
		}
		m, ok := t.(map[string]any)
		if !ok || typ.Key().Kind() != reflect.String {
			d.bad(field, "must be an object, not %s", show(t))
			return
		}
		out := reflect.MakeMapWithSize(typ, len(m))
		for _, k := range sortedKeys(m) {
			e := reflect.New(typ.Elem()).Elem()
			d.value(m[k], e, join(field, k))
			out.SetMapIndex(reflect.ValueOf(k).Convert(typ.Key()), e)
		}
		v.Set(out)
	case reflect.String:
		s, ok := t.(string)
		if !ok {
			d.bad(field, "must be a string, not %s", show(t))
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := t.(bool)
		if !ok {
			d.bad(field, "must be true or false, not %s", show(t))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := t.(json.Number)
		if !ok {
			d.bad(field, "must be an integer, not %s", show(t))
			return
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			if f, ferr := strconv.ParseFloat(string(n), 64); ferr == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				i = int64(f) // 1e3 and 2.0 are integers written another way
			} else if ferr == nil && f != math.Trunc(f) {
				d.bad(field, "must be an integer, not %s", n)
				return
			} else {
				d.bad(field, "%s is out of range", n)
				return
			}
		}
		if v.OverflowInt(i) {
			d.bad(field, "%s is out of range", n)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := t.(json.Number)
		if !ok {
			d.bad(field, "must be an integer, not %s", show(t))
			return
		}
		u, err := strconv.ParseUint(string(n), 10, 64)
		if err != nil {
			if strings.HasPrefix(string(n), "-") {
				d.bad(field, "must not be negative, not %s", n)
			} else if f, ferr := strconv.ParseFloat(string(n), 64); ferr == nil && f != math.Trunc(f) {
				d.bad(field, "must be an integer, not %s", n)
			} else {
				d.bad(field, "%s is out of range", n)
			}
			return
		}
		if v.OverflowUint(u) {
			d.bad(field, "%s is out of range", n)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		n, ok := t.(json.Number)
		if !ok {
			d.bad(field, "must be a number, not %s", show(t))
			return
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || v.OverflowFloat(f) {
			d.bad(field, "%s is out of range", n)
			return
		}
		v.SetFloat(f)
	default:
		d.bad(field, "cannot decode into %s", typ)
	}
}

// object decodes m into the struct v member by member.
func (d *decoder) object(m map[string]any, v reflect.Value, field string) {
	fields := structFields(v.Type())
	for _, k := range sortedKeys(m) {
		f, ok := fields.byName[k]
		if !ok {
			d.bad(join(field, k), "unknown field %q (fields: %s)", k, strings.Join(fields.names, ", "))
			continue
		}
		d.value(m[k], v.FieldByIndex(f.index), join(field, k))
	}
	for _, name := range fields.required {
		if _, ok := m[name]; !ok {
			d.bad(join(field, name), "%s is required", name)
		}
	}
}

type fieldInfo struct {
	index []int
}

type fieldSet struct {
	byName   map[string]fieldInfo
	names    []string
	required []string
}

// structFields lists the JSON members of struct type t, with embedded
// structs' members inlined as encoding/json does.
func structFields(t reflect.Type) fieldSet {
	fs := fieldSet{byName: map[string]fieldInfo{}}
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			idx := append(slices.Clone(index), i)
			if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
				walk(sf.Type, idx)
				continue
			}
			if !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			fs.byName[name] = fieldInfo{index: idx}
			fs.names = append(fs.names, name)
			if sf.Tag.Get("rollcall") == "required" {
				fs.required = append(fs.required, name)
			}
		}
	}
	walk(t, nil)
	slices.Sort(fs.names)
	return fs
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// show describes a Tree value in an error message, briefly.
func show(t Tree) string {
	switch x := t.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return string(x)
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		return strconv.Quote(x)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", t)
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return "a number or a duration"
	}
	return t.String()
}
