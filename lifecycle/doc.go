// Package lifecycle expires images by policy: a policy model that accepts
// Amazon ECR lifecycle-policy JSON unchanged, a pure evaluator, a runner
// that applies policies on a schedule, and the management API handler.
package lifecycle
