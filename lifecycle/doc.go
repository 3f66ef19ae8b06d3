// Package lifecycle expires images by policy. It has four parts:
//
//   - a policy model ([Policy], [Parse]) that accepts Amazon ECR
//     lifecycle-policy JSON unchanged, plus a few extensions;
//   - a pure evaluator ([Evaluate]) that turns a policy and a repository's
//     images into one [Decision] per image — expire or keep, the deciding
//     rule and a reason for people ("rule 2: untagged and pushed 31 days
//     ago (> 30)"); a dry run is an evaluation whose decisions are not
//     applied;
//   - a [Runner] that, on a schedule, evaluates every repository's policy
//     and expires images through an [Expirer] (*storage.Store), emitting
//     an [EventImageExpired] event per image and returning a [Report];
//   - a [Handler] for the management API routes
//     GET|PUT|DELETE /api/v1/repositories/{name}/lifecycle-policy and
//     POST /api/v1/repositories/{name}/lifecycle-policy/preview.
//
// # Policies
//
// A policy document is ECR's:
//
//	{"rules": [{
//	    "rulePriority": 1,
//	    "description": "Expire untagged images older than 14 days",
//	    "selection": {
//	        "tagStatus": "untagged",          // "tagged" | "untagged" | "any"
//	        "tagPrefixList": ["prod"],         // tagged only; or tagPatternList: ["prod*"]
//	        "countType": "sinceImagePushed",   // "imageCountMoreThan" | "sinceImagePushed" | "sinceImagePulled"
//	        "countUnit": "days",               // with sinceImagePushed and sinceImagePulled only
//	        "countNumber": 14
//	    },
//	    "action": {"type": "expire"}           // "expire" | "keep"
//	}]}
//
// [Parse] is strict: unknown fields, duplicate keys, values of the wrong
// type and everything ECR rejects are errors, and an [InvalidPolicyError]
// names the path of each problem, e.g.
// "rules[1].selection.countNumber: must be a positive integer" (rules are
// numbered from 0 in the order written). ECR's archive storage class
// ("storageClass": "archive", "transition", "sinceImageTransitioned") is
// not supported; "storageClass": "standard" is accepted.
//
// # Semantics
//
// Evaluation follows ECR's documented rules ("Lifecycle policy
// properties" and "Lifecycle policy evaluation rules" in the Amazon ECR
// User Guide):
//
//   - Rules are applied by rulePriority, lowest first; priorities are
//     unique positive integers that need not be sequential.
//   - "An image is expired by exactly one or zero rules." An image belongs
//     to the highest-priority rule whose selection matches it: "an image
//     that matches the tagging requirements of a higher priority rule
//     cannot be expired by a rule with a lower priority."
//   - "Rules can never mark images that are marked by higher priority
//     rules, but can still identify them as if they haven't been
//     expired": a rule counts every image it selects, including images a
//     higher rule decided. So the classic "keep" idiom — a rule with
//     imageCountMoreThan 9999 — shields its images from later rules,
//     which still count them.
//   - tagStatus tagged selects images with a tag for each entry of
//     tagPrefixList (a tag starting with it) or tagPatternList (a tag
//     matching it, where '*' matches any run of characters, at most four
//     per pattern): "an image is successfully matched if all of the tags
//     in the tagPatternList or tagPrefixList parameter are matched
//     against any of the image's tags." A rule uses one list, not both,
//     and only with tagged. untagged selects images without tags; any
//     selects all, and "a rule with a tagStatus value of any must have
//     the highest value for rulePriority and be evaluated last".
//   - imageCountMoreThan: "images are sorted from youngest to oldest based
//     on pushed_at_time and then all images greater than the specified
//     count are expired" (equal push times are ordered by digest).
//     sinceImagePushed: images pushed more than countNumber days
//     (countNumber × 24 hours) ago expire. "Expiration is always ordered
//     by pushed_at_time, and always expires older images before newer
//     ones."
//   - "Only one rule is allowed to select untagged images" and "the set of
//     rules must contain a unique set of tag prefixes" (also applied to
//     tag patterns); both hold among expire rules for the same
//     repositories.
//   - "If an image is referenced by a manifest list, it cannot be expired
//     without the manifest list being deleted first", and referrers are
//     cleaned up after "the deletion of the subject image" — see
//     Protection.
//
// # Extensions
//
//   - countType sinceImagePulled (which newer ECR templates also list):
//     images last pulled more than countNumber days ago, with countUnit
//     "days"; an image never pulled counts from its push.
//   - action type keep: the images the rule marks — the countNumber
//     newest for imageCountMoreThan, those pushed (or pulled) within
//     countNumber days for the age types, every selected image when
//     countType is omitted — are kept whatever later rules say. Unlike
//     an expire rule, a keep rule claims only the images it keeps: the
//     others fall through to later rules. Keep rules may use tagStatus
//     any at any priority and are exempt from the uniqueness rules.
//   - selection.repositoryPatternList: the rule applies only to
//     repositories whose name matches one of the patterns ('*' matches
//     any run of characters, '/' included), so one policy can serve a
//     whole registry (Options.RegistryPolicy). Rules with different
//     pattern lists are checked separately for "any comes last" and for
//     uniqueness, so each group of repositories may have its own last
//     rule.
//
// # Protection
//
// Rules see images, not every manifest: an untagged manifest listed by an
// index is part of that index, and a manifest with a subject (a
// signature, SBOM or attestation) belongs to its subject. (ECR counts
// each platform manifest of a multi-platform image as an untagged image
// of its own; Berth counts the index once, which is what "keep the five
// newest images" means.) So:
//
//   - The children of an index are not counted on their own; they expire
//     when every index listing them expires and are kept while any index
//     listing them is kept — tagged children included.
//   - Referrers follow their subject: they expire with it and are kept
//     with it; a referrer whose subject is not in the repository expires.
//   - A manifest that may still be part of a push ([Image].Pushing: pushed
//     within Options.Grace, one hour by default, or in the future) is
//     never expired, and neither is anything it lists or anything that
//     refers to it.
//
// The runner deletes an index before the manifests it lists and a
// subject before its referrers, and re-reads every image just before
// deleting it: an image that gained a tag, was pulled or is listed by an
// index since it was evaluated is skipped until the next run.
//
// # Events
//
// Deleting through *storage.Store writes a manifest-deleted event and an
// [EventImageExpired] event, with the deciding rule and reason, in the same
// transaction as the deletion. The Handler
// writes [EventPolicyUpdated] and [EventPolicyDeleted] with the policy
// change itself.
//
// # Errors
//
// Invalid documents are *[InvalidPolicyError]s (internal error code
// InvalidArgument). Runner and Handler wrap metadata errors once with the
// operation and repository; errors.Is(err, driver.ErrNotFound) holds for
// missing repositories and policies.
//
// # Concurrency
//
// Evaluate is pure and safe for concurrent use. A Runner and a Handler
// are safe for concurrent use; several runners on several nodes may run
// at once (each deletion either happens once or finds the image gone),
// though one per registry is enough.
//
// # Security
//
// The Handler sends every request through the server's AuthorizeFunc
// before reading anything: reads and previews with write false, PUT and
// DELETE with write true. Bodies are bounded by MaxDocumentSize (ECR's
// 30720 bytes). Policy documents are stored verbatim and returned only to
// callers allowed to read them.
package lifecycle
