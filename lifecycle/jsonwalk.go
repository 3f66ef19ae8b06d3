package lifecycle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// node is a parsed JSON value that remembers the order and uniqueness of
// object keys, so that the policy parser can name the exact path of every
// problem and reject duplicate keys, which encoding/json silently merges.
type node struct {
	kind byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	keys []string
	vals []*node
	arr  []*node
	str  string
	num  json.Number
	b    bool
}

// maxDepth bounds nesting; a policy is four levels deep.
const maxDepth = 16

// parseTree parses one JSON value followed by nothing but white space.
func parseTree(doc []byte) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	n, err := readNode(dec, "", 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &FieldError{Msg: "the document must hold a single JSON object"}
	}
	return n, nil
}

func syntaxError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &FieldError{Msg: "not valid JSON: unexpected end of input"}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &FieldError{Msg: fmt.Sprintf("not valid JSON: %v (at byte %d)", se, se.Offset)}
	}
	return &FieldError{Msg: "not valid JSON: " + err.Error()}
}

func readNode(dec *json.Decoder, path string, depth int) (*node, error) {
	if depth > maxDepth {
		return nil, &FieldError{Path: path, Msg: "nested too deeply"}
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxError(err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &node{kind: 'o'}
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, syntaxError(err)
				}
				k, _ := kt.(string)
				if seen[k] {
					return nil, &FieldError{Path: join(path, k), Msg: "duplicate key"}
				}
				seen[k] = true
				v, err := readNode(dec, join(path, k), depth+1)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k)
				n.vals = append(n.vals, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, syntaxError(err)
			}
			return n, nil
		case '[':
			n := &node{kind: 'a'}
			for dec.More() {
				v, err := readNode(dec, fmt.Sprintf("%s[%d]", path, len(n.arr)), depth+1)
				if err != nil {
					return nil, err
				}
				n.arr = append(n.arr, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, syntaxError(err)
			}
			return n, nil
		}
		return nil, syntaxError(fmt.Errorf("unexpected %v", t))
	case string:
		return &node{kind: 's', str: t}, nil
	case json.Number:
		return &node{kind: 'n', num: t}, nil
	case bool:
		return &node{kind: 'b', b: t}, nil
	case nil:
		return &node{kind: 'z'}, nil
	}
	return nil, syntaxError(fmt.Errorf("unexpected token %v", tok))
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (n *node) kindName() string {
	switch n.kind {
	case 'o':
		return "an object"
	case 'a':
		return "an array"
	case 's':
		return "a string"
	case 'n':
		return "a number"
	case 'b':
		return "a boolean"
	}
	return "null"
}
