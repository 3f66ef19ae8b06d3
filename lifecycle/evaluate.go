package lifecycle

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// Image is what the evaluator knows of one manifest in a repository: an
// image, an index, or an artifact.
type Image struct {
	// Repository is the repository holding the manifest; rules with a
	// repositoryPatternList select only images of matching repositories.
	Repository string
	// Digest identifies the manifest.
	Digest digest.Digest
	// Tags are the tags pointing at it.
	Tags []string
	// MediaType is the manifest's media type (informational).
	MediaType string
	// ArtifactType is the manifest's artifact type (informational).
	ArtifactType string
	// PushedAt is when the manifest was pushed to the repository.
	PushedAt time.Time
	// LastPulledAt is its latest pull; zero if never pulled.
	LastPulledAt time.Time
	// Subject is the manifest this one refers to (a signature, SBOM or
	// attestation of Subject); empty for ordinary images.
	Subject digest.Digest
	// Parents are the indexes of the repository listing this manifest.
	// Evaluate also derives them from the indexes' Children, so either
	// may be left empty.
	Parents []digest.Digest
	// Children are the manifests an index lists.
	Children []digest.Digest
	// Pushing marks a manifest that may still be part of a push in
	// progress (for example, pushed within a grace period); it is never
	// expired.
	Pushing bool
}

// Decision is the evaluator's verdict on one image.
type Decision struct {
	// Digest identifies the image.
	Digest digest.Digest
	// Tags are the image's tags, for people.
	Tags []string
	// Action is Expire or Keep.
	Action ActionType
	// Rule is the rulePriority of the rule that decided, or 0 when no
	// rule did.
	Rule int
	// Reason explains the decision for people, e.g. "rule 2: untagged and
	// pushed 31 days ago (> 30)".
	Reason string
}

// Evaluate applies a policy to the images of one repository at time now
// and returns one decision per image, in the order of images. It is pure:
// it reads nothing but its arguments and changes nothing, so a dry run
// is a call to Evaluate whose decisions are not applied.
//
// The policy should be valid (see Parse and Policy.Validate); a nil
// policy keeps everything. The semantics are described in the package
// documentation.
func Evaluate(p *Policy, images []Image, now time.Time) []Decision {
	e := newEvaluation(images, now)
	if p != nil {
		e.applyRules(p)
	}
	out := make([]Decision, len(images))
	for i := range images {
		j := i
		if k, ok := e.dupOf[i]; ok {
			j = k
		}
		d := e.resolve(j)
		d.Digest = images[i].Digest
		d.Tags = slices.Clone(images[i].Tags)
		out[i] = d
	}
	return out
}

type evaluation struct {
	images  []Image
	now     time.Time
	index   map[digest.Digest]int
	dupOf   map[int]int
	parents [][]int
	base    []*Decision
	final   []Decision
	state   []byte
}

func newEvaluation(images []Image, now time.Time) *evaluation {
	n := len(images)
	e := &evaluation{
		images: images, now: now,
		index: make(map[digest.Digest]int, n), dupOf: map[int]int{},
		parents: make([][]int, n), base: make([]*Decision, n),
		final: make([]Decision, n), state: make([]byte, n),
	}
	for i := range images {
		if j, dup := e.index[images[i].Digest]; dup {
			e.dupOf[i] = j
			continue
		}
		e.index[images[i].Digest] = i
	}
	add := func(child, parent int) {
		if child != parent && !slices.Contains(e.parents[child], parent) {
			e.parents[child] = append(e.parents[child], parent)
		}
	}
	for i := range images {
		if _, dup := e.dupOf[i]; dup {
			continue
		}
		for _, c := range images[i].Children {
			if j, ok := e.index[c]; ok {
				add(j, i)
			}
		}
		for _, p := range images[i].Parents {
			if j, ok := e.index[p]; ok {
				add(i, j)
			}
		}
	}
	for i := range e.parents {
		slices.SortFunc(e.parents[i], func(a, b int) int { return cmp.Compare(images[a].Digest, images[b].Digest) })
	}
	return e
}

// candidate reports whether rules see the image: referrers follow their
// subject and untagged children of an index follow the index, so only
// the others count as images of the repository.
func (e *evaluation) candidate(i int) bool {
	if _, dup := e.dupOf[i]; dup {
		return false
	}
	img := &e.images[i]
	return img.Subject == "" && (len(e.parents[i]) == 0 || len(img.Tags) > 0)
}

func (e *evaluation) applyRules(p *Policy) {
	rules := slices.Clone(p.Rules)
	slices.SortStableFunc(rules, func(a, b Rule) int { return cmp.Compare(a.RulePriority, b.RulePriority) })
	var candidates []int
	for i := range e.images {
		if e.candidate(i) {
			candidates = append(candidates, i)
		}
	}
	for ri := range rules {
		r := &rules[ri]
		// A rule looks at every image it selects, including those a
		// higher-priority rule already decided: ECR's "Rules can never
		// mark images that are marked by higher priority rules, but can
		// still identify them as if they haven't been expired."
		var selected []int
		for _, i := range candidates {
			if r.Selection.selects(&e.images[i]) {
				selected = append(selected, i)
			}
		}
		marks := e.mark(r, selected)
		for k, i := range selected {
			if e.base[i] != nil {
				// "An image that matches the tagging requirements of a
				// higher priority rule cannot be expired by a rule with
				// a lower priority." (ECR)
				continue
			}
			m := marks[k]
			switch r.Action.Type {
			case Expire:
				// An expire rule claims every image it selects: "An
				// image is expired by exactly one or zero rules."
				d := &Decision{Action: Keep, Rule: r.RulePriority, Reason: reason(r, "but", m.detail)}
				if m.marked {
					d.Action, d.Reason = Expire, reason(r, "and", m.detail)
				}
				e.base[i] = d
			case Keep:
				// A keep rule claims only the images it keeps; the others
				// fall through to later rules.
				if m.marked {
					e.base[i] = &Decision{Action: Keep, Rule: r.RulePriority, Reason: reason(r, "and", m.detail)}
				}
			}
		}
	}
}

type mark struct {
	marked bool
	detail string
}

// mark applies a rule's count to the images it selects. For an expire
// rule, marked means expired; for a keep rule, kept.
func (e *evaluation) mark(r *Rule, selected []int) []mark {
	s := &r.Selection
	keep := r.Action.Type == Keep
	out := make([]mark, len(selected))
	n := s.CountNumber
	switch s.CountType {
	case "":
		for k := range out {
			out[k].marked = true
		}
	case ImageCountMoreThan:
		// "images are sorted from youngest to oldest based on
		// pushed_at_time and then all images greater than the specified
		// count are expired." Equal push times are ordered by digest.
		order := make([]int, len(selected))
		for k := range order {
			order[k] = k
		}
		slices.SortFunc(order, func(a, b int) int {
			x, y := &e.images[selected[a]], &e.images[selected[b]]
			if c := y.PushedAt.Compare(x.PushedAt); c != 0 {
				return c
			}
			return cmp.Compare(x.Digest, y.Digest)
		})
		for rank, k := range order {
			beyond := rank+1 > n
			op := "<="
			if beyond {
				op = ">"
			}
			out[k] = mark{marked: beyond != keep, detail: fmt.Sprintf("%s newest of %d (%s %d)", ordinal(rank+1), len(selected), op, n)}
		}
	case SincePushed, SincePulled:
		for k, i := range selected {
			img := &e.images[i]
			at, what := img.PushedAt, "pushed"
			if s.CountType == SincePulled {
				if img.LastPulledAt.IsZero() {
					what = "never pulled, pushed"
				} else {
					at, what = img.LastPulledAt, "last pulled"
				}
			}
			// "all images whose pushed_at_time is older than the
			// specified number of days based on countNumber are
			// expired."
			age := e.now.Sub(at)
			older := olderThanDays(age, n)
			op := "<="
			if older {
				op = ">"
			}
			out[k] = mark{marked: older != keep, detail: fmt.Sprintf("%s %s (%s %d)", what, ago(age), op, n)}
		}
	}
	return out
}

func olderThanDays(age time.Duration, days int) bool {
	const maxDays = int(1<<63-1) / int(24*time.Hour)
	if days >= maxDays {
		return false
	}
	return age > time.Duration(days)*24*time.Hour
}

func reason(r *Rule, conj, detail string) string {
	head := fmt.Sprintf("rule %d", r.RulePriority)
	if r.Action.Type == Keep {
		head += " keeps"
	}
	sel := describeSelection(&r.Selection)
	switch {
	case sel == "" && detail == "":
		return head + ": every image"
	case sel == "":
		return head + ": " + detail
	case detail == "":
		return head + ": " + sel
	}
	return head + ": " + sel + " " + conj + " " + detail
}

func describeSelection(s *Selection) string {
	quote := func(l []string) string {
		q := make([]string, len(l))
		for i, x := range l {
			q[i] = fmt.Sprintf("%q", x)
		}
		return strings.Join(q, ", ")
	}
	plural := func(l []string) string {
		if len(l) > 1 {
			return "es"
		}
		return ""
	}
	switch s.TagStatus {
	case Untagged:
		return "untagged"
	case Tagged:
		if s.TagPrefixList != nil {
			return "tag prefix" + plural(s.TagPrefixList) + " " + quote(s.TagPrefixList)
		}
		ps := "s"
		if len(s.TagPatternList) == 1 {
			ps = ""
		}
		return "tag pattern" + ps + " " + quote(s.TagPatternList)
	}
	return ""
}

// resolve returns the final decision of image i, following subjects and
// parent indexes.
func (e *evaluation) resolve(i int) Decision {
	switch e.state[i] {
	case 2:
		return e.final[i]
	case 1:
		return Decision{Action: Keep, Reason: "part of a reference cycle"}
	}
	e.state[i] = 1
	img := &e.images[i]
	var d Decision
	switch {
	case img.Subject != "":
		// Referrers (signatures, SBOMs, attestations) follow their
		// subject. ECR: "lifecycle policies automatically clean up
		// those artifacts within 24 hours of the deletion of the subject
		// image."
		j, ok := e.index[img.Subject]
		if !ok || j == i {
			d = Decision{Action: Expire, Reason: fmt.Sprintf("referrer of %s, which is not in the repository", short(img.Subject))}
			break
		}
		sd := e.resolve(j)
		d = Decision{Action: sd.Action, Rule: sd.Rule}
		if sd.Action == Expire {
			d.Reason = fmt.Sprintf("referrer of %s, which expires%s", short(img.Subject), byRule(sd.Rule))
		} else {
			d.Reason = fmt.Sprintf("referrer of %s, which is kept", short(img.Subject))
		}
	case e.base[i] != nil:
		d = *e.base[i]
	case len(e.parents[i]) > 0 && len(img.Tags) == 0:
		// An untagged manifest listed by indexes is part of them: it
		// expires when every index listing it expires.
		d = Decision{Action: Expire}
		for _, p := range e.parents[i] {
			pd := e.resolve(p)
			if pd.Action == Expire && d.Reason == "" {
				d.Rule = pd.Rule
				d.Reason = fmt.Sprintf("listed only by index %s, which expires%s", short(e.images[p].Digest), byRule(pd.Rule))
				if len(e.parents[i]) > 1 {
					d.Reason = fmt.Sprintf("listed only by indexes that expire, such as %s%s", short(e.images[p].Digest), byRule(pd.Rule))
				}
			}
		}
	default:
		d = Decision{Action: Keep, Reason: "no rule selects it"}
	}
	if d.Action == Expire {
		// "If an image is referenced by a manifest list, it cannot be
		// expired without the manifest list being deleted first." (ECR)
		// Children of a kept index are kept.
		for _, p := range e.parents[i] {
			if pd := e.resolve(p); pd.Action == Keep {
				d = Decision{Action: Keep, Rule: pd.Rule, Reason: fmt.Sprintf("listed by index %s, which is kept", short(e.images[p].Digest))}
				break
			}
		}
	}
	if d.Action == Expire && (img.Pushing || img.PushedAt.After(e.now)) {
		d.Action = Keep
		d.Reason = fmt.Sprintf("may still be being pushed (pushed %s); otherwise %s", ago(e.now.Sub(img.PushedAt)), d.Reason)
	}
	e.final[i] = d
	e.state[i] = 2
	return d
}

// byRule names the rule a follower's decision comes from.
func byRule(rule int) string {
	if rule == 0 {
		return ""
	}
	return fmt.Sprintf(" (rule %d)", rule)
}

// short abbreviates a digest for reasons: its algorithm and 12 hex
// digits.
func short(d digest.Digest) string {
	s := string(d)
	if i := strings.IndexByte(s, ':'); i >= 0 && len(s) > i+13 {
		return s[:i+13]
	}
	return s
}

func ordinal(n int) string {
	suffix := "th"
	switch n % 10 {
	case 1:
		suffix = "st"
	case 2:
		suffix = "nd"
	case 3:
		suffix = "rd"
	}
	if n%100 >= 11 && n%100 <= 13 {
		suffix = "th"
	}
	return fmt.Sprintf("%d%s", n, suffix)
}

// ago formats an age for reasons: "31 days ago", "30 days 5 hours ago",
// "3 hours ago", "12 minutes ago", "just now".
func ago(d time.Duration) string {
	unit := func(n int64, u string) string {
		if n == 1 {
			return "1 " + u
		}
		return fmt.Sprintf("%d %ss", n, u)
	}
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return unit(int64(d/time.Minute), "minute") + " ago"
	case d < 24*time.Hour:
		return unit(int64(d/time.Hour), "hour") + " ago"
	}
	days, hours := int64(d/(24*time.Hour)), int64(d%(24*time.Hour)/time.Hour)
	if hours == 0 {
		return unit(days, "day") + " ago"
	}
	return unit(days, "day") + " " + unit(hours, "hour") + " ago"
}

// expiryOrder returns the indexes of the expiring decisions in the order
// to apply them: an index before the manifests it lists and a subject
// before its referrers (so a failure half-way never leaves an index
// pointing at a deleted manifest), then older pushes first, as ECR
// expires "older images before newer ones".
func expiryOrder(images []Image, decisions []Decision) []int {
	e := newEvaluation(images, time.Time{})
	depth := make([]int, len(images))
	state := make([]byte, len(images))
	var walk func(i int) int
	walk = func(i int) int {
		if state[i] == 2 {
			return depth[i]
		}
		if state[i] == 1 {
			return 0
		}
		state[i] = 1
		d := 0
		for _, p := range e.parents[i] {
			d = max(d, walk(p)+1)
		}
		if j, ok := e.index[images[i].Subject]; ok && images[i].Subject != "" && j != i {
			d = max(d, walk(j)+1)
		}
		depth[i], state[i] = d, 2
		return d
	}
	var out []int
	for i, d := range decisions {
		if d.Action == Expire {
			walk(i)
			out = append(out, i)
		}
	}
	slices.SortStableFunc(out, func(a, b int) int {
		if c := cmp.Compare(depth[a], depth[b]); c != 0 {
			return c
		}
		if c := images[a].PushedAt.Compare(images[b].PushedAt); c != 0 {
			return c
		}
		return cmp.Compare(images[a].Digest, images[b].Digest)
	})
	return out
}
