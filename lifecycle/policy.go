package lifecycle

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errcode"
)

// TagStatus selects images by whether they are tagged.
type TagStatus string

// The tag statuses of ECR's selection.tagStatus.
const (
	// Tagged selects images with at least one tag matching every entry of
	// the rule's tagPrefixList or tagPatternList.
	Tagged TagStatus = "tagged"
	// Untagged selects images without tags.
	Untagged TagStatus = "untagged"
	// Any selects every image.
	Any TagStatus = "any"
)

// CountType is how a rule's countNumber is read.
type CountType string

// The count types.
const (
	// ImageCountMoreThan (ECR) marks the selected images beyond the
	// countNumber most recently pushed.
	ImageCountMoreThan CountType = "imageCountMoreThan"
	// SincePushed (ECR "sinceImagePushed") marks the selected images
	// pushed more than countNumber days ago.
	SincePushed CountType = "sinceImagePushed"
	// SincePulled ("sinceImagePulled") marks the selected images last
	// pulled more than countNumber days ago; an image never pulled counts
	// from its push.
	SincePulled CountType = "sinceImagePulled"
)

// CountUnit is the unit of countNumber for the age count types.
type CountUnit string

// Days is the only count unit, as in ECR.
const Days CountUnit = "days"

// ActionType is what a rule does to the images it marks.
type ActionType string

// The actions.
const (
	// Expire deletes the marked images (ECR's only action).
	Expire ActionType = "expire"
	// Keep protects the marked images from every later rule (an
	// extension).
	Keep ActionType = "keep"
)

// Limits on policies.
const (
	// MaxDocumentSize bounds a policy document in bytes: ECR's limit on
	// lifecyclePolicyText.
	MaxDocumentSize = 30720
	// MaxRules bounds the rules of a policy.
	MaxRules = 100
	// MaxListEntries bounds each prefix and pattern list.
	MaxListEntries = 100
	// MaxPatternLength bounds each prefix and pattern (a tag has at most
	// 128 characters).
	MaxPatternLength = 128
	// MaxWildcards bounds the '*' of each pattern, as ECR does.
	MaxWildcards = 4
	// MaxCountNumber bounds rulePriority and countNumber.
	MaxCountNumber = 1<<31 - 1
	// MaxDescriptionLen bounds a rule's description in bytes.
	MaxDescriptionLen = 1024
)

// Policy is a lifecycle policy: ECR's lifecycle-policy document, with the
// extensions described in the package documentation. Its JSON encoding is
// that document.
type Policy struct {
	// Rules are the policy's rules, in the order written; they are
	// evaluated by ascending RulePriority.
	Rules []Rule `json:"rules"`
}

// Rule is one rule of a policy.
type Rule struct {
	// RulePriority orders evaluation, lowest first; unique and positive.
	RulePriority int `json:"rulePriority"`
	// Description is free text for people.
	Description string `json:"description,omitempty"`
	// Selection says which images the rule looks at and which of them it
	// marks.
	Selection Selection `json:"selection"`
	// Action is what happens to the marked images.
	Action Action `json:"action"`
}

// Selection is a rule's selection.
type Selection struct {
	// TagStatus is tagged, untagged or any.
	TagStatus TagStatus `json:"tagStatus"`
	// TagPrefixList selects tagged images having, for each entry, a tag
	// that starts with it.
	TagPrefixList []string `json:"tagPrefixList,omitempty"`
	// TagPatternList selects tagged images having, for each entry, a tag
	// that matches it; "*" matches any run of characters.
	TagPatternList []string `json:"tagPatternList,omitempty"`
	// RepositoryPatternList (an extension) restricts the rule to
	// repositories whose name matches one of the patterns; empty means
	// every repository. It makes one policy usable registry-wide.
	RepositoryPatternList []string `json:"repositoryPatternList,omitempty"`
	// CountType says how CountNumber is read. Required for expire rules;
	// a keep rule without one keeps every image it selects.
	CountType CountType `json:"countType,omitempty"`
	// CountUnit is "days" for the age count types, empty otherwise.
	CountUnit CountUnit `json:"countUnit,omitempty"`
	// CountNumber is the image count or the number of days.
	CountNumber int `json:"countNumber,omitempty"`
}

// Action is a rule's action.
type Action struct {
	// Type is expire or keep.
	Type ActionType `json:"type"`
}

// FieldError is one problem with a policy document, at a JSON path such
// as "rules[1].selection.countNumber" (rules are numbered from 0 as
// written, not by priority). Path is empty for the document as a whole.
type FieldError struct {
	// Path locates the field, e.g. "rules[0].selection.tagStatus".
	Path string
	// Msg says what is wrong with it.
	Msg string
}

// Error returns "path: message", or the message alone for the whole
// document.
func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// InvalidPolicyError reports a policy document that Parse or
// Policy.Validate rejects; it lists every problem found, in document
// order.
type InvalidPolicyError struct {
	// Fields are the problems, at least one.
	Fields []*FieldError
}

// Error lists every problem, prefixed "lifecycle: invalid policy: ".
func (e *InvalidPolicyError) Error() string {
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Error()
	}
	return "lifecycle: invalid policy: " + strings.Join(msgs, "; ")
}

// ErrorCode implements the internal error-code classification:
// InvalidArgument.
func (e *InvalidPolicyError) ErrorCode() errcode.Code { return errcode.InvalidArgument }

type errs struct{ list []*FieldError }

func (e *errs) add(path, format string, args ...any) {
	e.list = append(e.list, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (e *errs) err() error {
	if len(e.list) == 0 {
		return nil
	}
	return &InvalidPolicyError{Fields: e.list}
}

// Parse reads a policy document: ECR lifecycle-policy JSON, unchanged,
// or with Berth's extensions. It is strict: unknown fields, duplicate
// keys, values of the wrong type and every rule ECR rejects are errors,
// reported as an *InvalidPolicyError naming each field.
func Parse(doc []byte) (*Policy, error) {
	if len(doc) > MaxDocumentSize {
		return nil, &InvalidPolicyError{Fields: []*FieldError{{Msg: fmt.Sprintf("the document is longer than %d bytes", MaxDocumentSize)}}}
	}
	root, err := parseTree(doc)
	if err != nil {
		return nil, &InvalidPolicyError{Fields: []*FieldError{err.(*FieldError)}}
	}
	var e errs
	p := decodePolicy(root, &e)
	if err := e.err(); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// fields checks that n is an object whose keys are all known, and calls
// f for each present key.
func fields(n *node, path string, e *errs, known []string, f func(key string, v *node, path string)) bool {
	if n.kind != 'o' {
		if path == "" {
			e.add("", "the document must be a JSON object, not %s", n.kindName())
			return false
		}
		e.add(path, "must be an object, not %s", n.kindName())
		return false
	}
	for i, k := range n.keys {
		if !slices.Contains(known, k) {
			e.add(join(path, k), "unknown field")
			continue
		}
		f(k, n.vals[i], join(path, k))
	}
	return true
}

func has(n *node, key string) bool { return n.kind == 'o' && slices.Contains(n.keys, key) }

func str(v *node, path string, e *errs) string {
	if v.kind != 's' {
		e.add(path, "must be a string, not %s", v.kindName())
		return ""
	}
	return v.str
}

// positive reads a positive integer written without fraction or
// exponent.
func positive(v *node, path string, e *errs) int {
	if v.kind != 'n' {
		e.add(path, "must be a positive integer, not %s", v.kindName())
		return 0
	}
	s := v.num.String()
	if strings.TrimLeft(s, "0123456789") != "" {
		e.add(path, "must be a positive integer")
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > MaxCountNumber {
		e.add(path, "must be at most %d", MaxCountNumber)
		return 0
	}
	if n < 1 {
		e.add(path, "must be a positive integer")
		return 0
	}
	return int(n)
}

func strList(v *node, path string, e *errs) []string {
	if v.kind != 'a' {
		e.add(path, "must be an array of strings, not %s", v.kindName())
		return nil
	}
	out := make([]string, 0, len(v.arr))
	for i, x := range v.arr {
		p := fmt.Sprintf("%s[%d]", path, i)
		if x.kind != 's' {
			e.add(p, "must be a string, not %s", x.kindName())
			continue
		}
		out = append(out, x.str)
	}
	return out
}

func decodePolicy(root *node, e *errs) *Policy {
	p := &Policy{}
	ok := fields(root, "", e, []string{"rules"}, func(_ string, v *node, path string) {
		if v.kind != 'a' {
			e.add(path, "must be an array of rules, not %s", v.kindName())
			return
		}
		if len(v.arr) > MaxRules {
			e.add(path, "must hold at most %d rules", MaxRules)
			return
		}
		p.Rules = make([]Rule, len(v.arr))
		for i, rn := range v.arr {
			decodeRule(rn, fmt.Sprintf("rules[%d]", i), &p.Rules[i], e)
		}
	})
	if ok && !has(root, "rules") {
		e.add("rules", "required")
	}
	return p
}

func decodeRule(n *node, path string, r *Rule, e *errs) {
	ok := fields(n, path, e, []string{"rulePriority", "description", "selection", "action"}, func(k string, v *node, path string) {
		switch k {
		case "rulePriority":
			r.RulePriority = positive(v, path, e)
		case "description":
			r.Description = str(v, path, e)
		case "selection":
			decodeSelection(v, path, &r.Selection, e)
		case "action":
			fields(v, path, e, []string{"type", "targetStorageClass"}, func(k string, v *node, path string) {
				switch k {
				case "type":
					s := str(v, path, e)
					if s == "transition" {
						e.add(path, `"transition" is not supported: Berth has no archive storage class`)
						return
					}
					r.Action.Type = ActionType(s)
				case "targetStorageClass":
					e.add(path, "not supported: Berth has no archive storage class")
				}
			})
			if v.kind == 'o' && !has(v, "type") {
				e.add(join(path, "type"), "required")
			}
		}
	})
	if !ok {
		return
	}
	for _, req := range []string{"rulePriority", "selection", "action"} {
		if !has(n, req) {
			e.add(join(path, req), "required")
		}
	}
}

func decodeSelection(n *node, path string, s *Selection, e *errs) {
	ok := fields(n, path, e, []string{"tagStatus", "tagPrefixList", "tagPatternList", "repositoryPatternList", "countType", "countUnit", "countNumber", "storageClass"}, func(k string, v *node, path string) {
		switch k {
		case "tagStatus":
			s.TagStatus = TagStatus(str(v, path, e))
		case "tagPrefixList":
			s.TagPrefixList = strList(v, path, e)
		case "tagPatternList":
			s.TagPatternList = strList(v, path, e)
		case "repositoryPatternList":
			s.RepositoryPatternList = strList(v, path, e)
		case "countType":
			ct := str(v, path, e)
			if ct == "sinceImageTransitioned" {
				e.add(path, `"sinceImageTransitioned" is not supported: Berth has no archive storage class`)
				return
			}
			s.CountType = CountType(ct)
		case "countUnit":
			s.CountUnit = CountUnit(str(v, path, e))
		case "countNumber":
			s.CountNumber = positive(v, path, e)
		case "storageClass":
			if sc := str(v, path, e); sc != "standard" && v.kind == 's' {
				e.add(path, `must be "standard": Berth has no archive storage class`)
			}
		}
	})
	if ok && !has(n, "tagStatus") {
		e.add(join(path, "tagStatus"), "required")
	}
}

// Validate checks a policy built in code against the rules Parse
// enforces, returning an *InvalidPolicyError.
func (p *Policy) Validate() error {
	var e errs
	if p == nil || len(p.Rules) == 0 {
		e.add("rules", "must hold at least one rule")
		return e.err()
	}
	if len(p.Rules) > MaxRules {
		e.add("rules", "must hold at most %d rules", MaxRules)
	}
	byPriority := map[int]int{}
	for i := range p.Rules {
		r := &p.Rules[i]
		path := fmt.Sprintf("rules[%d]", i)
		// "When you add rules to a lifecycle policy, you must give them
		// each a unique value for rulePriority." (ECR, Rule priority)
		switch {
		case r.RulePriority < 1 || r.RulePriority > MaxCountNumber:
			e.add(path+".rulePriority", "must be a positive integer")
		default:
			if j, dup := byPriority[r.RulePriority]; dup {
				e.add(path+".rulePriority", "%d is already the priority of rules[%d]; priorities must be unique", r.RulePriority, j)
			} else {
				byPriority[r.RulePriority] = i
			}
		}
		if len(r.Description) > MaxDescriptionLen {
			e.add(path+".description", "must be at most %d bytes", MaxDescriptionLen)
		}
		validateSelection(r, path, &e)
		switch r.Action.Type {
		case Expire, Keep:
		default:
			e.add(path+".action.type", `must be "expire" or "keep", not %q`, r.Action.Type)
		}
		// "A rule with a tagStatus value of any must have the highest
		// value for rulePriority and be evaluated last." (ECR, Rule
		// priority.) Keep rules only claim the images they keep, so a
		// keep rule with tagStatus any may come anywhere.
		// Rules for other repositories (another repositoryPatternList)
		// are not compared.
		if r.Selection.TagStatus == Any && r.Action.Type == Expire {
			if j := laterRule(p, i); j >= 0 {
				e.add(path+".rulePriority", "a rule expiring images with tagStatus any must have the largest rulePriority, but rules[%d] has %d", j, p.Rules[j].RulePriority)
			}
		}
	}
	validateOverlaps(p, &e)
	return e.err()
}

// laterRule returns the index of a rule evaluated after rule i (the one
// with the largest priority) that applies to some of the same
// repositories — every repository, or the same repositoryPatternList —
// or -1.
func laterRule(p *Policy, i int) int {
	ri := &p.Rules[i]
	scope := strings.Join(sorted(ri.Selection.RepositoryPatternList), "\x00")
	best := -1
	for j := range p.Rules {
		rj := &p.Rules[j]
		if j == i || rj.RulePriority <= ri.RulePriority {
			continue
		}
		if scope != "" && len(rj.Selection.RepositoryPatternList) > 0 && strings.Join(sorted(rj.Selection.RepositoryPatternList), "\x00") != scope {
			continue
		}
		if best < 0 || rj.RulePriority > p.Rules[best].RulePriority {
			best = j
		}
	}
	return best
}

func validateSelection(r *Rule, path string, e *errs) {
	s := &r.Selection
	sp := path + ".selection"
	switch s.TagStatus {
	case Tagged:
		// "If you specify tagged, then you must also specify a
		// tagPrefixList value or a tagPatternList value." (ECR, Tag
		// status.)
		if s.TagPrefixList == nil && s.TagPatternList == nil {
			e.add(sp, "tagStatus tagged needs a tagPrefixList or a tagPatternList")
		}
		// "A lifecycle policy rule may specify either tagPatternList or
		// tagPrefixList, but not both." (ECR, evaluation rules.)
		if s.TagPrefixList != nil && s.TagPatternList != nil {
			e.add(sp, "tagPrefixList and tagPatternList cannot be used together")
		}
	case Untagged, Any:
		// "The tagPatternList or tagPrefixList parameters may only be
		// used if the tagStatus is tagged." (ECR, evaluation rules.)
		if s.TagPrefixList != nil {
			e.add(sp+".tagPrefixList", "only allowed when tagStatus is tagged")
		}
		if s.TagPatternList != nil {
			e.add(sp+".tagPatternList", "only allowed when tagStatus is tagged")
		}
	default:
		e.add(sp+".tagStatus", `must be "tagged", "untagged" or "any", not %q`, s.TagStatus)
	}
	if s.TagStatus == Tagged {
		checkList(s.TagPrefixList, sp+".tagPrefixList", false, isTagChar, "a tag", e)
		checkList(s.TagPatternList, sp+".tagPatternList", true, isTagChar, "a tag", e)
	}
	checkList(s.RepositoryPatternList, sp+".repositoryPatternList", true, isRepoChar, "a repository name", e)

	switch s.CountType {
	case "":
		// ECR requires countType; a keep rule without one keeps every
		// image it selects.
		if r.Action.Type != Keep {
			e.add(sp+".countType", "required")
		}
		if s.CountNumber != 0 {
			e.add(sp+".countNumber", "only allowed with a countType")
		}
		if s.CountUnit != "" {
			e.add(sp+".countUnit", "only allowed when countType is sinceImagePushed or sinceImagePulled")
		}
		return
	case ImageCountMoreThan:
		// "The countUnit parameter is only used if countType is
		// sinceImagePushed." (ECR, evaluation rules.)
		if s.CountUnit != "" {
			e.add(sp+".countUnit", "only allowed when countType is sinceImagePushed or sinceImagePulled")
		}
	case SincePushed, SincePulled:
		switch s.CountUnit {
		case Days:
		case "":
			e.add(sp+".countUnit", "required when countType is %s (the only unit is \"days\")", s.CountType)
		default:
			e.add(sp+".countUnit", `must be "days", not %q`, s.CountUnit)
		}
	default:
		e.add(sp+".countType", `must be "imageCountMoreThan", "sinceImagePushed" or "sinceImagePulled", not %q`, s.CountType)
	}
	switch {
	case s.CountNumber == 0:
		e.add(sp+".countNumber", "required")
	case s.CountNumber < 1 || s.CountNumber > MaxCountNumber:
		e.add(sp+".countNumber", "must be a positive integer")
	}
}

func isTagChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}

func isRepoChar(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-' || c == '/'
}

func checkList(list []string, path string, wildcards bool, ok func(byte) bool, what string, e *errs) {
	if list == nil {
		return
	}
	if len(list) == 0 {
		e.add(path, "must not be empty")
		return
	}
	if len(list) > MaxListEntries {
		e.add(path, "must hold at most %d entries", MaxListEntries)
		return
	}
	for i, s := range list {
		p := fmt.Sprintf("%s[%d]", path, i)
		if s == "" {
			e.add(p, "must not be empty")
			continue
		}
		if len(s) > MaxPatternLength {
			e.add(p, "must be at most %d characters", MaxPatternLength)
			continue
		}
		// "There is a maximum limit of four wildcards (*) per string."
		// (ECR, Tag pattern list.)
		if wildcards && strings.Count(s, "*") > MaxWildcards {
			e.add(p, "%q has %d wildcards; at most %d are allowed", s, strings.Count(s, "*"), MaxWildcards)
			continue
		}
		for j := 0; j < len(s); j++ {
			c := s[j]
			if c == '*' && wildcards {
				continue
			}
			if c == '*' {
				e.add(p, "%q contains '*': wildcards are only allowed in tagPatternList", s)
				break
			}
			if !ok(c) {
				e.add(p, "%q contains %q, which cannot appear in %s", s, string(rune(c)), what)
				break
			}
		}
	}
}

// validateOverlaps enforces ECR's "The set of rules must contain a unique
// set of tag prefixes" and "Only one rule is allowed to select untagged
// images" among expire rules applying to the same repositories. Keep
// rules are exempt: claiming an image twice is harmless.
func validateOverlaps(p *Policy, e *errs) {
	seen := map[string]int{}
	for i, r := range p.Rules {
		if r.Action.Type != Expire {
			continue
		}
		s := r.Selection
		repos := strings.Join(sorted(s.RepositoryPatternList), "\x00")
		var key, field, what string
		switch s.TagStatus {
		case Untagged:
			key, field, what = "u\x01"+repos, "tagStatus", "only one rule may select untagged images, but rules[%d] does too"
		case Tagged:
			if s.TagPrefixList != nil {
				key, field, what = "p\x01"+repos+"\x01"+strings.Join(sorted(s.TagPrefixList), "\x00"), "tagPrefixList", "each rule must have its own set of tag prefixes, but rules[%d] has the same"
			} else {
				key, field, what = "t\x01"+repos+"\x01"+strings.Join(sorted(s.TagPatternList), "\x00"), "tagPatternList", "each rule must have its own set of tag patterns, but rules[%d] has the same"
			}
		default:
			continue
		}
		if j, dup := seen[key]; dup {
			e.add(fmt.Sprintf("rules[%d].selection.%s", i, field), what, j)
			continue
		}
		seen[key] = i
	}
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return slices.Compact(c)
}

// String returns the policy as an ECR lifecycle-policy document.
func (p *Policy) String() string {
	b, _ := json.Marshal(p)
	return string(b)
}

// MarshalJSON encodes the policy as a lifecycle-policy document.
func (p *Policy) MarshalJSON() ([]byte, error) {
	type plain Policy
	if p.Rules == nil {
		return json.Marshal(plain{Rules: []Rule{}})
	}
	return json.Marshal((*plain)(p))
}
