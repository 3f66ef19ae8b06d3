package lifecycle

import "strings"

// wildcardMatch reports whether s matches pattern in full, where '*'
// matches any run of characters (including none) and every other
// character matches itself. It runs in O(len(s)·len(pattern)) at worst.
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchesTags reports whether the image's tags satisfy a tagged
// selection. ECR: "an image is successfully matched if all of the tags in
// the tagPatternList or tagPrefixList parameter are matched against any
// of the image's tags" — every entry must match at least one tag.
func matchesTags(s *Selection, tags []string) bool {
	if len(tags) == 0 {
		return false
	}
	for _, prefix := range s.TagPrefixList {
		if !anyTag(tags, func(t string) bool { return strings.HasPrefix(t, prefix) }) {
			return false
		}
	}
	for _, pattern := range s.TagPatternList {
		if !anyTag(tags, func(t string) bool { return wildcardMatch(pattern, t) }) {
			return false
		}
	}
	return true
}

func anyTag(tags []string, f func(string) bool) bool {
	for _, t := range tags {
		if f(t) {
			return true
		}
	}
	return false
}

// appliesTo reports whether a rule applies to a repository: always when
// it has no repositoryPatternList, otherwise when one pattern matches the
// whole name.
func (s *Selection) appliesTo(repo string) bool {
	if len(s.RepositoryPatternList) == 0 {
		return true
	}
	for _, p := range s.RepositoryPatternList {
		if wildcardMatch(p, repo) {
			return true
		}
	}
	return false
}

// selects reports whether the selection's tag status and tag lists
// select an image.
func (s *Selection) selects(img *Image) bool {
	if !s.appliesTo(img.Repository) {
		return false
	}
	switch s.TagStatus {
	case Untagged:
		return len(img.Tags) == 0
	case Tagged:
		return matchesTags(s, img.Tags)
	case Any:
		return true
	}
	return false
}
