package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/opencontainers/go-digest"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var (
	_ driver.Registry      = (*Metadata)(nil)
	_ driver.ManifestHeads = (*Metadata)(nil)
	_ driver.LinkPruner    = (*Metadata)(nil)
)

// isForeignKeyViolation reports whether err is a foreign key failure: a
// row referring to a repository, manifest or blob that does not exist
// (any more).
func isForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23503"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

func invalid(err error) error { return fmt.Errorf("sqlmeta: %w", err) }

// passThrough reports whether err is already a classified driver error
// that must be returned as it is.
func passThrough(err error) bool {
	return errors.Is(err, driver.ErrNotFound) || errors.Is(err, driver.ErrAlreadyExists) ||
		errors.Is(err, driver.ErrConflict) || errors.Is(err, driver.ErrInvalidArgument)
}

// fail wraps a database error with the operation, leaving classified
// errors alone.
func fail(op string, err error) error {
	if err == nil || passThrough(err) {
		return err
	}
	return fmt.Errorf("sqlmeta: %s: %w", op, err)
}

func (m *Metadata) insertEvents(ctx context.Context, tx *sql.Tx, events []driver.Event) error {
	for _, e := range events {
		data := e.Data
		if data == nil {
			data = []byte{}
		}
		if _, err := tx.ExecContext(ctx, m.q("INSERT INTO outbox (type, subject, data, created_at) VALUES (?, ?, ?, ?)"),
			e.Type, e.Subject, data, nanos(e.CreatedAt)); err != nil {
			return fmt.Errorf("append event: %w", err)
		}
	}
	return nil
}

// exec runs one statement with events in a transaction and returns the
// rows it affected; check, when not nil, turns that count into an error.
func (m *Metadata) execWithEvents(ctx context.Context, events []driver.Event, check func(n int64) error, query string, args ...any) error {
	return m.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, m.q(query), args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(n); err != nil {
				return err
			}
		}
		return m.insertEvents(ctx, tx, events)
	})
}

// page trims a result fetched with limit+1 rows to limit and reports
// whether the extra row was there.
func page[T any](rows []T, limit int) ([]T, bool) {
	if len(rows) > limit {
		return rows[:limit:limit], true
	}
	return rows, false
}

// list runs a keyset query fetching limit+1 rows. When the page is empty
// and repo is not empty, it checks that the repository exists, so that a
// missing repository is ErrNotFound rather than an empty page.
func list[T any](ctx context.Context, m *Metadata, op, repo string, limit int, scan func(scanner) (T, error), query string, args ...any) ([]T, bool, error) {
	if err := driver.CheckLimit(limit); err != nil {
		return nil, false, invalid(err)
	}
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	// Fetch one record more than the page to learn whether more follow.
	rows, err := m.read(ctx, query+" LIMIT ?", append(args, min(limit, maxPage)+1)...)
	if err != nil {
		return nil, false, fail(op, err)
	}
	out, err := collect(rows, scan)
	if err != nil {
		return nil, false, fail(op, err)
	}
	if len(out) == 0 && repo != "" {
		if err := m.repoExists(ctx, m.r, repo); err != nil {
			return nil, false, fail(op, err)
		}
	}
	out, more := page(out, min(limit, maxPage))
	return out, more, nil
}

// maxPage bounds the records one List call returns, whatever the limit.
const maxPage = 1 << 20

func (m *Metadata) repoExists(ctx context.Context, q querier, name string) error {
	var one int
	err := q.QueryRowContext(ctx, m.q("SELECT 1 FROM repositories WHERE name = ?"), name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("repository " + name)
	}
	return err
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Repositories.

const repoColumns = "name, visibility, immutable_tags, immutable_exclusions, description, created_at, updated_at"

func scanRepo(s scanner) (*driver.Repository, error) {
	var (
		r                    driver.Repository
		vis, excl            string
		immutable            int64
		createdAt, updatedAt int64
	)
	if err := s.Scan(&r.Name, &vis, &immutable, &excl, &r.Description, &createdAt, &updatedAt); err != nil {
		return nil, err
	}
	r.Visibility = driver.Visibility(vis)
	r.ImmutableTags = immutable != 0
	if err := decodeJSON(excl, &r.ImmutableTagExclusions); err != nil {
		return nil, fmt.Errorf("decode exclusions of repository %s: %w", r.Name, err)
	}
	r.CreatedAt, r.UpdatedAt = fromNanos(createdAt), fromNanos(updatedAt)
	return &r, nil
}

func strs(s []string) string {
	if s == nil {
		s = []string{}
	}
	return encodeJSON(s)
}

// CreateRepository implements driver.Repositories.
func (m *Metadata) CreateRepository(ctx context.Context, r *driver.Repository, events ...driver.Event) error {
	if err := r.Validate(); err != nil {
		return invalid(err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := m.execWithEvents(ctx, events, func(n int64) error {
		if n == 0 {
			return fmt.Errorf("sqlmeta: repository %s: %w", r.Name, driver.ErrAlreadyExists)
		}
		return nil
	}, "INSERT INTO repositories ("+repoColumns+") VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
		r.Name, string(r.Visibility), boolInt(r.ImmutableTags), strs(r.ImmutableTagExclusions), r.Description, nanos(r.CreatedAt), nanos(r.UpdatedAt))
	return fail("create repository "+r.Name, err)
}

// GetRepository implements driver.Repositories.
func (m *Metadata) GetRepository(ctx context.Context, name string) (*driver.Repository, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := scanRepo(m.readRow(ctx, "SELECT "+repoColumns+" FROM repositories WHERE name = ?", name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("repository " + name)
	}
	return r, fail("get repository "+name, err)
}

// UpdateRepository implements driver.Repositories.
func (m *Metadata) UpdateRepository(ctx context.Context, r *driver.Repository, events ...driver.Event) error {
	if err := r.Validate(); err != nil {
		return invalid(err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := m.execWithEvents(ctx, events, func(n int64) error {
		if n == 0 {
			return notFound("repository " + r.Name)
		}
		return nil
	}, "UPDATE repositories SET visibility = ?, immutable_tags = ?, immutable_exclusions = ?, description = ?, updated_at = ? WHERE name = ?",
		string(r.Visibility), boolInt(r.ImmutableTags), strs(r.ImmutableTagExclusions), r.Description, nanos(r.UpdatedAt), r.Name)
	return fail("update repository "+r.Name, err)
}

// DeleteRepository implements driver.Repositories. Foreign keys with ON
// DELETE CASCADE remove everything under the repository in the same
// statement.
func (m *Metadata) DeleteRepository(ctx context.Context, name string, events ...driver.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := m.execWithEvents(ctx, events, func(n int64) error {
		if n == 0 {
			return notFound("repository " + name)
		}
		return nil
	}, "DELETE FROM repositories WHERE name = ?", name)
	return fail("delete repository "+name, err)
}

// ListRepositories implements driver.Repositories.
func (m *Metadata) ListRepositories(ctx context.Context, after string, limit int) ([]*driver.Repository, bool, error) {
	return list(ctx, m, "list repositories", "", limit, scanRepo,
		"SELECT "+repoColumns+" FROM repositories WHERE name > ? ORDER BY name", after)
}

// Manifests.

const manifestColumns = "repository, digest, media_type, artifact_type, size, config_digest, subject, annotations, platforms, blobs, children, pushed_at, last_pulled_at"

func scanManifest(s scanner) (*driver.Manifest, error) {
	var (
		mf                                  driver.Manifest
		d, config, subject                  string
		annotations, platforms, blobs, kids string
		pushedAt, pulledAt                  int64
	)
	if err := s.Scan(&mf.Repository, &d, &mf.MediaType, &mf.ArtifactType, &mf.Size, &config, &subject,
		&annotations, &platforms, &blobs, &kids, &pushedAt, &pulledAt); err != nil {
		return nil, err
	}
	mf.Digest, mf.ConfigDigest, mf.Subject = digest.Digest(d), digest.Digest(config), digest.Digest(subject)
	mf.PushedAt, mf.LastPulledAt = fromNanos(pushedAt), fromNanos(pulledAt)
	for _, f := range []struct {
		col string
		v   any
	}{{annotations, &mf.Annotations}, {platforms, &mf.Platforms}, {blobs, &mf.Blobs}, {kids, &mf.Children}} {
		if err := decodeJSON(f.col, f.v); err != nil {
			return nil, fmt.Errorf("decode manifest %s@%s: %w", mf.Repository, d, err)
		}
	}
	return &mf, nil
}

func digests(ds []digest.Digest) string {
	if ds == nil {
		ds = []digest.Digest{}
	}
	return encodeJSON(ds)
}

// PutManifest implements driver.Manifests. The manifest row keeps Blobs
// and Children (as JSON) for reading; manifest_blobs and
// manifest_children index them for reference queries.
func (m *Metadata) PutManifest(ctx context.Context, mf *driver.Manifest, events ...driver.Event) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	annotations := mf.Annotations
	if annotations == nil {
		annotations = map[string]string{}
	}
	platforms := mf.Platforms
	if platforms == nil {
		platforms = []driver.Platform{}
	}
	var created bool
	err := m.tx(ctx, func(tx *sql.Tx) error {
		created = false
		res, err := tx.ExecContext(ctx, m.q("INSERT INTO manifests ("+manifestColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repository, digest) DO NOTHING"),
			mf.Repository, string(mf.Digest), mf.MediaType, mf.ArtifactType, mf.Size, string(mf.ConfigDigest), string(mf.Subject),
			encodeJSON(annotations), encodeJSON(platforms), digests(mf.Blobs), digests(mf.Children), nanos(mf.PushedAt), nanos(mf.LastPulledAt))
		if isForeignKeyViolation(err) {
			return notFound("repository " + mf.Repository)
		}
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 {
			created = true
			for i, b := range mf.Blobs {
				if _, err := tx.ExecContext(ctx, m.q("INSERT INTO manifest_blobs (repository, manifest, position, blob) VALUES (?, ?, ?, ?)"),
					mf.Repository, string(mf.Digest), i, string(b)); err != nil {
					return err
				}
			}
			for i, c := range mf.Children {
				if _, err := tx.ExecContext(ctx, m.q("INSERT INTO manifest_children (repository, parent, position, child) VALUES (?, ?, ?, ?)"),
					mf.Repository, string(mf.Digest), i, string(c)); err != nil {
					return err
				}
			}
		}
		return m.insertEvents(ctx, tx, events)
	})
	if err != nil {
		return false, fail("put manifest "+mf.Repository+"@"+string(mf.Digest), err)
	}
	return created, nil
}

// GetManifest implements driver.Manifests.
func (m *Metadata) GetManifest(ctx context.Context, repo string, d digest.Digest) (*driver.Manifest, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mf, err := scanManifest(m.readRow(ctx, "SELECT "+manifestColumns+" FROM manifests WHERE repository = ? AND digest = ?", repo, string(d)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("manifest " + repo + "@" + string(d))
	}
	return mf, fail("get manifest "+repo+"@"+string(d), err)
}

// ManifestHead implements driver.ManifestHeads: a tag is resolved with a
// join, so tag and record come from one statement and one snapshot.
func (m *Metadata) ManifestHead(ctx context.Context, repo, reference string) (driver.ManifestHead, error) {
	if err := ctx.Err(); err != nil {
		return driver.ManifestHead{}, err
	}
	var row *sql.Row
	what := "manifest " + repo + "@" + reference
	if strings.Contains(reference, ":") {
		row = m.readRow(ctx, "SELECT digest, media_type, size FROM manifests WHERE repository = ? AND digest = ?", repo, reference)
	} else {
		what = "tag " + repo + ":" + reference
		row = m.readRow(ctx, "SELECT m.digest, m.media_type, m.size FROM tags t JOIN manifests m ON m.repository = t.repository AND m.digest = t.digest WHERE t.repository = ? AND t.name = ?", repo, reference)
	}
	var h driver.ManifestHead
	var d string
	err := row.Scan(&d, &h.MediaType, &h.Size)
	if errors.Is(err, sql.ErrNoRows) {
		return driver.ManifestHead{}, notFound(what)
	}
	if err != nil {
		return driver.ManifestHead{}, fail("get "+what, err)
	}
	h.Digest = digest.Digest(d)
	return h, nil
}

func (m *Metadata) recordTagChange(ctx context.Context, tx *sql.Tx, repo, tag string, old, new digest.Digest, by string, at time.Time) error {
	_, err := tx.ExecContext(ctx, m.q("INSERT INTO tag_history (repository, tag, old_digest, new_digest, changed_at, changed_by) VALUES (?, ?, ?, ?, ?, ?)"),
		repo, tag, string(old), string(new), nanos(at), by)
	return err
}

// DeleteManifest implements driver.Manifests.
func (m *Metadata) DeleteManifest(ctx context.Context, repo string, d digest.Digest, by string, at time.Time, events ...driver.Event) (*driver.Manifest, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var mf *driver.Manifest
	err := m.tx(ctx, func(tx *sql.Tx) error {
		if m.dialect == dialectPostgres {
			// Lock the manifest first: a concurrent SetTag to it then
			// waits and fails, instead of adding a tag that the cascade
			// below would remove without history. (A deadlock with such a
			// SetTag is detected by PostgreSQL and retried by m.tx.)
			var one int
			err := tx.QueryRowContext(ctx, m.q("SELECT 1 FROM manifests WHERE repository = ? AND digest = ? FOR UPDATE"), repo, string(d)).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return notFound("manifest " + repo + "@" + string(d))
			}
			if err != nil {
				return err
			}
		}
		// Deleting the tags locks them before their history is written,
		// so per-tag history stays in commit order.
		rows, err := tx.QueryContext(ctx, m.q("DELETE FROM tags WHERE repository = ? AND digest = ? RETURNING name"), repo, string(d))
		if err != nil {
			return err
		}
		names, err := collect(rows, func(s scanner) (string, error) {
			var n string
			return n, s.Scan(&n)
		})
		if err != nil {
			return err
		}
		mf, err = scanManifest(tx.QueryRowContext(ctx, m.q("DELETE FROM manifests WHERE repository = ? AND digest = ? RETURNING "+manifestColumns), repo, string(d)))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("manifest " + repo + "@" + string(d))
		}
		if err != nil {
			return err
		}
		slices.Sort(names)
		for _, name := range names {
			if err := m.recordTagChange(ctx, tx, repo, name, d, "", by, at); err != nil {
				return err
			}
		}
		return m.insertEvents(ctx, tx, events)
	})
	if err != nil {
		return nil, fail("delete manifest "+repo+"@"+string(d), err)
	}
	return mf, nil
}

// ListManifests implements driver.Manifests.
func (m *Metadata) ListManifests(ctx context.Context, repo string, after digest.Digest, limit int) ([]*driver.Manifest, bool, error) {
	return list(ctx, m, "list manifests of "+repo, repo, limit, scanManifest,
		"SELECT "+manifestColumns+" FROM manifests WHERE repository = ? AND digest > ? ORDER BY digest", repo, string(after))
}

// MarkPulled implements driver.Manifests.
func (m *Metadata) MarkPulled(ctx context.Context, repo string, d digest.Digest, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	res, err := m.w.ExecContext(ctx, m.q("UPDATE manifests SET last_pulled_at = ? WHERE repository = ? AND digest = ? AND last_pulled_at < ?"),
		nanos(at), repo, string(d), nanos(at))
	if err != nil {
		return fail("mark pulled "+repo+"@"+string(d), err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fail("mark pulled "+repo+"@"+string(d), err)
	} else if n == 1 {
		return nil
	}
	var one int
	err = m.readRow(ctx, "SELECT 1 FROM manifests WHERE repository = ? AND digest = ?", repo, string(d)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("manifest " + repo + "@" + string(d))
	}
	return fail("mark pulled "+repo+"@"+string(d), err)
}

// Tags.

const tagColumns = "repository, name, digest, updated_at, updated_by"

func scanTag(s scanner) (*driver.Tag, error) {
	var (
		t         driver.Tag
		d         string
		updatedAt int64
	)
	if err := s.Scan(&t.Repository, &t.Name, &d, &updatedAt, &t.UpdatedBy); err != nil {
		return nil, err
	}
	t.Digest, t.UpdatedAt = digest.Digest(d), fromNanos(updatedAt)
	return &t, nil
}

// SetTag implements driver.Tags. The decision is race-free on both
// dialects: the INSERT … ON CONFLICT DO NOTHING of a new tag waits for any
// concurrent insert of the same tag to commit or abort (PostgreSQL) or runs
// under the database write lock (SQLite), and an existing tag is locked
// (SELECT … FOR UPDATE on PostgreSQL) before it is compared and moved.
func (m *Metadata) SetTag(ctx context.Context, t *driver.Tag, events ...driver.Event) (digest.Digest, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	forUpdate := ""
	if m.dialect == dialectPostgres {
		forUpdate = " FOR UPDATE"
	}
	var old digest.Digest
	err := m.tx(ctx, func(tx *sql.Tx) error {
		old = ""
		r, err := scanRepo(tx.QueryRowContext(ctx, m.q("SELECT "+repoColumns+" FROM repositories WHERE name = ?"), t.Repository))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("repository " + t.Repository)
		}
		if err != nil {
			return err
		}
		for attempt := 0; ; attempt++ {
			res, err := tx.ExecContext(ctx, m.q("INSERT INTO tags ("+tagColumns+") VALUES (?, ?, ?, ?, ?) ON CONFLICT (repository, name) DO NOTHING"),
				t.Repository, t.Name, string(t.Digest), nanos(t.UpdatedAt), t.UpdatedBy)
			if isForeignKeyViolation(err) {
				return notFound("manifest " + t.Repository + "@" + string(t.Digest))
			}
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				break
			}
			var cur string
			err = tx.QueryRowContext(ctx, m.q("SELECT digest FROM tags WHERE repository = ? AND name = ?"+forUpdate), t.Repository, t.Name).Scan(&cur)
			if errors.Is(err, sql.ErrNoRows) && attempt < 3 {
				continue // deleted since the insert saw it: try again
			}
			if err != nil {
				return err
			}
			old = digest.Digest(cur)
			if old == t.Digest {
				return m.insertEvents(ctx, tx, events)
			}
			if r.TagImmutable(t.Name) {
				return fmt.Errorf("sqlmeta: tag %s:%s is immutable: %w", t.Repository, t.Name, driver.ErrAlreadyExists)
			}
			_, err = tx.ExecContext(ctx, m.q("UPDATE tags SET digest = ?, updated_at = ?, updated_by = ? WHERE repository = ? AND name = ?"),
				string(t.Digest), nanos(t.UpdatedAt), t.UpdatedBy, t.Repository, t.Name)
			if isForeignKeyViolation(err) {
				return notFound("manifest " + t.Repository + "@" + string(t.Digest))
			}
			if err != nil {
				return err
			}
			break
		}
		if err := m.recordTagChange(ctx, tx, t.Repository, t.Name, old, t.Digest, t.UpdatedBy, t.UpdatedAt); err != nil {
			return err
		}
		return m.insertEvents(ctx, tx, events)
	})
	if err != nil {
		return "", fail("set tag "+t.Repository+":"+t.Name, err)
	}
	return old, nil
}

// GetTag implements driver.Tags.
func (m *Metadata) GetTag(ctx context.Context, repo, name string) (*driver.Tag, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, err := scanTag(m.readRow(ctx, "SELECT "+tagColumns+" FROM tags WHERE repository = ? AND name = ?", repo, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("tag " + repo + ":" + name)
	}
	return t, fail("get tag "+repo+":"+name, err)
}

// DeleteTag implements driver.Tags.
func (m *Metadata) DeleteTag(ctx context.Context, repo, name, by string, at time.Time, events ...driver.Event) (*driver.Tag, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var t *driver.Tag
	err := m.tx(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = scanTag(tx.QueryRowContext(ctx, m.q("DELETE FROM tags WHERE repository = ? AND name = ? RETURNING "+tagColumns), repo, name))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("tag " + repo + ":" + name)
		}
		if err != nil {
			return err
		}
		if err := m.recordTagChange(ctx, tx, repo, name, t.Digest, "", by, at); err != nil {
			return err
		}
		return m.insertEvents(ctx, tx, events)
	})
	if err != nil {
		return nil, fail("delete tag "+repo+":"+name, err)
	}
	return t, nil
}

// ListTags implements driver.Tags.
func (m *Metadata) ListTags(ctx context.Context, repo, after string, limit int) ([]*driver.Tag, bool, error) {
	return list(ctx, m, "list tags of "+repo, repo, limit, scanTag,
		"SELECT "+tagColumns+" FROM tags WHERE repository = ? AND name > ? ORDER BY name", repo, after)
}

// TagsOf implements driver.Tags.
func (m *Metadata) TagsOf(ctx context.Context, repo string, d digest.Digest) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows, err := m.read(ctx, "SELECT name FROM tags WHERE repository = ? AND digest = ? ORDER BY name", repo, string(d))
	if err != nil {
		return nil, fail("tags of "+repo+"@"+string(d), err)
	}
	out, err := collect(rows, func(s scanner) (string, error) {
		var n string
		return n, s.Scan(&n)
	})
	return out, fail("tags of "+repo+"@"+string(d), err)
}

func scanTagChange(s scanner) (*driver.TagChange, error) {
	var (
		c        driver.TagChange
		old, new string
		at       int64
	)
	if err := s.Scan(&c.Seq, &c.Repository, &c.Tag, &old, &new, &at, &c.By); err != nil {
		return nil, err
	}
	c.Old, c.New, c.At = digest.Digest(old), digest.Digest(new), fromNanos(at)
	return &c, nil
}

// ListTagHistory implements driver.TagHistory.
func (m *Metadata) ListTagHistory(ctx context.Context, repo, tag string, after int64, limit int) ([]*driver.TagChange, bool, error) {
	return list(ctx, m, "list history of "+repo+":"+tag, repo, limit, scanTagChange,
		"SELECT seq, repository, tag, old_digest, new_digest, changed_at, changed_by FROM tag_history WHERE repository = ? AND tag = ? AND seq > ? ORDER BY seq",
		repo, tag, after)
}

// ListReferrers implements driver.Referrers.
func (m *Metadata) ListReferrers(ctx context.Context, repo string, subject digest.Digest, artifactType string, after digest.Digest, limit int) ([]*driver.Manifest, bool, error) {
	if subject == "" {
		// No manifest refers to nothing; the empty subject column means
		// "no subject".
		if err := driver.CheckLimit(limit); err != nil {
			return nil, false, invalid(err)
		}
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		if err := m.repoExists(ctx, m.r, repo); err != nil {
			return nil, false, fail("list referrers", err)
		}
		return []*driver.Manifest{}, false, nil
	}
	q := "SELECT " + manifestColumns + " FROM manifests WHERE repository = ? AND subject = ? AND digest > ?"
	args := []any{repo, string(subject), string(after)}
	if artifactType != "" {
		q += " AND artifact_type = ?"
		args = append(args, artifactType)
	}
	return list(ctx, m, "list referrers of "+repo+"@"+string(subject), repo, limit, scanManifest, q+" ORDER BY digest", args...)
}

// Links.

// LinkBlob implements driver.Links. Foreign keys make it race-free against
// deletion of the repository or the blob record. Relinking refreshes
// linked_at, never moving it back.
func (m *Metadata) LinkBlob(ctx context.Context, repo string, d digest.Digest, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := m.w.ExecContext(ctx, m.q(`INSERT INTO blob_links (repository, digest, linked_at) VALUES (?, ?, ?)
ON CONFLICT (repository, digest) DO UPDATE SET linked_at = excluded.linked_at WHERE blob_links.linked_at < excluded.linked_at`),
		repo, string(d), nanos(at))
	if isForeignKeyViolation(err) {
		if err := m.repoExists(ctx, m.r, repo); err != nil {
			return fail("link blob", err)
		}
		return notFound("blob " + string(d))
	}
	return fail("link blob "+string(d)+" to "+repo, err)
}

// PruneLinks implements driver.LinkPruner. The repository row is locked
// first (SELECT … FOR UPDATE on PostgreSQL; the write lock on SQLite): a
// concurrent PutManifest, whose foreign key check on the new manifest row
// needs a share lock on that row, either commits before, and the deletion,
// a later statement with a later snapshot, sees its manifest, or waits until
// the pruning commits.
func (m *Metadata) PruneLinks(ctx context.Context, repo string, linkedBefore time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	lock := ""
	if m.dialect == dialectPostgres {
		lock = " FOR UPDATE"
	}
	var n int64
	err := m.tx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, m.q("SELECT 1 FROM repositories WHERE name = ?"+lock), repo).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("repository " + repo)
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, m.q(`DELETE FROM blob_links
WHERE repository = ? AND linked_at < ?
AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.blob = blob_links.digest AND mb.repository = blob_links.repository)
AND NOT EXISTS (SELECT 1 FROM manifests mf WHERE mf.repository = blob_links.repository AND mf.digest = blob_links.digest)`),
			repo, nanos(linkedBefore))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fail("prune links of "+repo, err)
	}
	return n, nil
}

// BlobLinked implements driver.Links.
func (m *Metadata) BlobLinked(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	var one int
	err := m.readRow(ctx, "SELECT 1 FROM blob_links WHERE repository = ? AND digest = ?", repo, string(d)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fail("blob linked", err)
	}
	return true, nil
}

// UnlinkBlob implements driver.Links.
func (m *Metadata) UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	res, err := m.w.ExecContext(ctx, m.q("DELETE FROM blob_links WHERE repository = ? AND digest = ?"), repo, string(d))
	if err != nil {
		return fail("unlink blob", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fail("unlink blob", err)
	} else if n == 0 {
		return notFound("link of blob " + string(d) + " to " + repo)
	}
	return nil
}

func scanDigest(s scanner) (digest.Digest, error) {
	var d string
	err := s.Scan(&d)
	return digest.Digest(d), err
}

// ListLinks implements driver.Links.
func (m *Metadata) ListLinks(ctx context.Context, repo string, after digest.Digest, limit int) ([]digest.Digest, bool, error) {
	return list(ctx, m, "list links of "+repo, repo, limit, scanDigest,
		"SELECT digest FROM blob_links WHERE repository = ? AND digest > ? ORDER BY digest", repo, string(after))
}

// References.

// CountBlobReferences implements driver.References.
func (m *Metadata) CountBlobReferences(ctx context.Context, d digest.Digest) (links, manifests int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	err = m.readRow(ctx, `SELECT
(SELECT COUNT(*) FROM blob_links WHERE digest = ?),
(SELECT COUNT(*) FROM (SELECT DISTINCT repository, manifest FROM manifest_blobs WHERE blob = ?) refs)`, string(d), string(d)).Scan(&links, &manifests)
	if err != nil {
		return 0, 0, fail("count references of "+string(d), err)
	}
	return links, manifests, nil
}

// ListParents implements driver.References.
func (m *Metadata) ListParents(ctx context.Context, repo string, child digest.Digest, after digest.Digest, limit int) ([]digest.Digest, bool, error) {
	return list(ctx, m, "list parents of "+repo+"@"+string(child), repo, limit, scanDigest,
		"SELECT DISTINCT parent FROM manifest_children WHERE repository = ? AND child = ? AND parent > ? ORDER BY parent", repo, string(child), string(after))
}

// DeleteUnreferencedBlob implements driver.References. The blob row is
// locked first (SELECT … FOR UPDATE on PostgreSQL; the write lock on
// SQLite), so a concurrent LinkBlob, whose foreign key check needs that
// row, waits for the decision and then fails; references are then counted
// and the row deleted in the same transaction.
func (m *Metadata) DeleteUnreferencedBlob(ctx context.Context, d digest.Digest, createdBefore time.Time) (*driver.Blob, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lock := ""
	if m.dialect == dialectPostgres {
		lock = " FOR UPDATE"
	}
	var b *driver.Blob
	err := m.tx(ctx, func(tx *sql.Tx) error {
		var err error
		b, err = scanBlob(tx.QueryRowContext(ctx, m.q("SELECT "+blobColumns+" FROM blobs WHERE digest = ?"+lock), string(d)))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("blob " + string(d))
		}
		if err != nil {
			return err
		}
		if !b.CreatedAt.Before(createdBefore) {
			return fmt.Errorf("sqlmeta: blob %s is within the grace period: %w", d, driver.ErrConflict)
		}
		var links, refs, manifests int64
		if err := tx.QueryRowContext(ctx, m.q(`SELECT
(SELECT COUNT(*) FROM blob_links WHERE digest = ?),
(SELECT COUNT(*) FROM manifest_blobs WHERE blob = ?),
(SELECT COUNT(*) FROM manifests WHERE digest = ?)`), string(d), string(d), string(d)).Scan(&links, &refs, &manifests); err != nil {
			return err
		}
		if links > 0 || refs > 0 || manifests > 0 {
			return fmt.Errorf("sqlmeta: blob %s has %d links, %d manifest references and is the content of %d manifests: %w", d, links, refs, manifests, driver.ErrConflict)
		}
		_, err = tx.ExecContext(ctx, m.q("DELETE FROM blobs WHERE digest = ?"), string(d))
		return err
	})
	if err != nil {
		return nil, fail("delete unreferenced blob "+string(d), err)
	}
	return b, nil
}

// Policies.

func scanPolicy(s scanner) (*driver.Policy, error) {
	var (
		p         driver.Policy
		doc       string
		updatedAt int64
	)
	if err := s.Scan(&p.Repository, &doc, &updatedAt, &p.UpdatedBy); err != nil {
		return nil, err
	}
	p.Document, p.UpdatedAt = []byte(doc), fromNanos(updatedAt)
	return &p, nil
}

// PutPolicy implements driver.Policies.
func (m *Metadata) PutPolicy(ctx context.Context, p *driver.Policy, events ...driver.Event) error {
	if err := driver.CheckJSON("lifecycle policy of "+p.Repository, p.Document); err != nil {
		return invalid(err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := m.execWithEvents(ctx, events, nil, `INSERT INTO policies (repository, document, updated_at, updated_by) VALUES (?, ?, ?, ?)
ON CONFLICT (repository) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		p.Repository, string(p.Document), nanos(p.UpdatedAt), p.UpdatedBy)
	if isForeignKeyViolation(err) {
		return notFound("repository " + p.Repository)
	}
	return fail("put lifecycle policy of "+p.Repository, err)
}

// GetPolicy implements driver.Policies.
func (m *Metadata) GetPolicy(ctx context.Context, repo string) (*driver.Policy, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := scanPolicy(m.readRow(ctx, "SELECT repository, document, updated_at, updated_by FROM policies WHERE repository = ?", repo))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("lifecycle policy of " + repo)
	}
	return p, fail("get lifecycle policy of "+repo, err)
}

// DeletePolicy implements driver.Policies.
func (m *Metadata) DeletePolicy(ctx context.Context, repo string, events ...driver.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := m.execWithEvents(ctx, events, func(n int64) error {
		if n == 0 {
			return notFound("lifecycle policy of " + repo)
		}
		return nil
	}, "DELETE FROM policies WHERE repository = ?", repo)
	return fail("delete lifecycle policy of "+repo, err)
}

// ListPolicies implements driver.Policies.
func (m *Metadata) ListPolicies(ctx context.Context, after string, limit int) ([]*driver.Policy, bool, error) {
	return list(ctx, m, "list lifecycle policies", "", limit, scanPolicy,
		"SELECT repository, document, updated_at, updated_by FROM policies WHERE repository > ? ORDER BY repository", after)
}

// Scan results.

func scanScanResult(s scanner) (*driver.ScanResult, error) {
	var (
		r         driver.ScanResult
		d, data   string
		scannedAt int64
	)
	if err := s.Scan(&d, &r.Scanner, &r.Kind, &data, &scannedAt); err != nil {
		return nil, err
	}
	r.Digest, r.Data, r.ScannedAt = digest.Digest(d), []byte(data), fromNanos(scannedAt)
	return &r, nil
}

// PutScanResult implements driver.ScanResults.
func (m *Metadata) PutScanResult(ctx context.Context, r *driver.ScanResult, events ...driver.Event) error {
	if err := driver.CheckScanKind(r.Kind); err != nil {
		return invalid(err)
	}
	if err := driver.CheckJSON("scan "+r.Kind+" of "+string(r.Digest), r.Data); err != nil {
		return invalid(err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := m.execWithEvents(ctx, events, nil, `INSERT INTO scan_results (digest, scanner, kind, data, scanned_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (digest, scanner, kind) DO UPDATE SET data = excluded.data, scanned_at = excluded.scanned_at`,
		string(r.Digest), r.Scanner, r.Kind, string(r.Data), nanos(r.ScannedAt))
	return fail("put scan result", err)
}

// GetScanResult implements driver.ScanResults.
func (m *Metadata) GetScanResult(ctx context.Context, d digest.Digest, scanner, kind string) (*driver.ScanResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := scanScanResult(m.readRow(ctx, "SELECT digest, scanner, kind, data, scanned_at FROM scan_results WHERE digest = ? AND scanner = ? AND kind = ?",
		string(d), scanner, kind))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("scan " + kind + " of " + string(d) + " by " + scanner)
	}
	return r, fail("get scan result", err)
}

// ListScanResults implements driver.ScanResults.
func (m *Metadata) ListScanResults(ctx context.Context, d digest.Digest) ([]*driver.ScanResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows, err := m.read(ctx, "SELECT digest, scanner, kind, data, scanned_at FROM scan_results WHERE digest = ? ORDER BY scanner, kind", string(d))
	if err != nil {
		return nil, fail("list scan results", err)
	}
	out, err := collect(rows, scanScanResult)
	return out, fail("list scan results", err)
}

// DeleteScanResults implements driver.ScanResults.
func (m *Metadata) DeleteScanResults(ctx context.Context, d digest.Digest) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	res, err := m.w.ExecContext(ctx, m.q("DELETE FROM scan_results WHERE digest = ?"), string(d))
	if err != nil {
		return 0, fail("delete scan results", err)
	}
	n, err := res.RowsAffected()
	return n, fail("delete scan results", err)
}

// Tokens.

const tokenColumns = "id, name, username, secret_hash, scopes, created_by, created_at, expires_at, revoked_at, rate_per_second, rate_burst"

func scanToken(s scanner) (*driver.Token, error) {
	var (
		t                         driver.Token
		scopes                    string
		created, expires, revoked int64
	)
	if err := s.Scan(&t.ID, &t.Name, &t.Username, &t.SecretHash, &scopes, &t.CreatedBy, &created, &expires, &revoked,
		&t.RatePerSecond, &t.RateBurst); err != nil {
		return nil, err
	}
	if err := decodeJSON(scopes, &t.Scopes); err != nil {
		return nil, fmt.Errorf("decode scopes of token %s: %w", t.ID, err)
	}
	t.CreatedAt, t.ExpiresAt, t.RevokedAt = fromNanos(created), fromNanos(expires), fromNanos(revoked)
	return &t, nil
}

// CreateToken implements driver.Tokens.
func (m *Metadata) CreateToken(ctx context.Context, t *driver.Token, events ...driver.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	hash := t.SecretHash
	if hash == nil {
		hash = []byte{}
	}
	err := m.execWithEvents(ctx, events, nil, "INSERT INTO tokens ("+tokenColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		t.ID, t.Name, t.Username, hash, strs(t.Scopes), t.CreatedBy, nanos(t.CreatedAt), nanos(t.ExpiresAt), nanos(t.RevokedAt),
		t.RatePerSecond, t.RateBurst)
	if isUniqueViolation(err) {
		return fmt.Errorf("sqlmeta: token %s (user %s): %w", t.ID, t.Username, driver.ErrAlreadyExists)
	}
	return fail("create token "+t.ID, err)
}

func (m *Metadata) getToken(ctx context.Context, col, key string) (*driver.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, err := scanToken(m.readRow(ctx, "SELECT "+tokenColumns+" FROM tokens WHERE "+col+" = ?", key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("token with " + col + " " + key)
	}
	return t, fail("get token", err)
}

// GetToken implements driver.Tokens.
func (m *Metadata) GetToken(ctx context.Context, id string) (*driver.Token, error) {
	return m.getToken(ctx, "id", id)
}

// GetTokenByUsername implements driver.Tokens.
func (m *Metadata) GetTokenByUsername(ctx context.Context, username string) (*driver.Token, error) {
	return m.getToken(ctx, "username", username)
}

// RevokeToken implements driver.Tokens.
func (m *Metadata) RevokeToken(ctx context.Context, id string, at time.Time, events ...driver.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := m.tx(ctx, func(tx *sql.Tx) error {
		var revoked int64
		err := tx.QueryRowContext(ctx, m.q("UPDATE tokens SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END WHERE id = ? RETURNING revoked_at"),
			nanos(at), id).Scan(&revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("token " + id)
		}
		if err != nil {
			return err
		}
		return m.insertEvents(ctx, tx, events)
	})
	return fail("revoke token "+id, err)
}

// ListTokens implements driver.Tokens.
func (m *Metadata) ListTokens(ctx context.Context, after string, limit int) ([]*driver.Token, bool, error) {
	return list(ctx, m, "list tokens", "", limit, scanToken,
		"SELECT "+tokenColumns+" FROM tokens WHERE id > ? ORDER BY id", after)
}

// Outbox.

// AppendEvents implements driver.Outbox.
func (m *Metadata) AppendEvents(ctx context.Context, events ...driver.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return fail("append events", m.tx(ctx, func(tx *sql.Tx) error { return m.insertEvents(ctx, tx, events) }))
}

// ClaimEvents implements driver.Outbox. One UPDATE claims the oldest
// claimable events; on PostgreSQL, FOR UPDATE SKIP LOCKED lets concurrent
// claimers take disjoint events without waiting, and the repeated
// claimed_until condition is re-checked on rows another claimer changed.
func (m *Metadata) ClaimEvents(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*driver.Event, error) {
	if err := driver.CheckLimit(limit); err != nil {
		return nil, invalid(err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lock := ""
	if m.dialect == dialectPostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	n := nanos(now)
	rows, err := m.w.QueryContext(ctx, m.q(`UPDATE outbox SET claimed_until = ?
WHERE claimed_until <= ? AND id IN (SELECT id FROM outbox WHERE claimed_until <= ? ORDER BY id LIMIT ?`+lock+`)
RETURNING id, type, subject, data, created_at`), nanos(now.Add(lease)), n, n, limit)
	if err != nil {
		return nil, fail("claim events", err)
	}
	out, err := collect(rows, func(s scanner) (*driver.Event, error) {
		var (
			e         driver.Event
			createdAt int64
		)
		if err := s.Scan(&e.ID, &e.Type, &e.Subject, &e.Data, &createdAt); err != nil {
			return nil, err
		}
		e.CreatedAt = fromNanos(createdAt)
		return &e, nil
	})
	if err != nil {
		return nil, fail("claim events", err)
	}
	slices.SortFunc(out, func(a, b *driver.Event) int { return int(a.ID - b.ID) })
	return out, nil
}

// AckEvents implements driver.Outbox.
func (m *Metadata) AckEvents(ctx context.Context, ids ...int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		q := "DELETE FROM outbox WHERE id IN (?" + strings.Repeat(", ?", len(chunk)-1) + ")"
		if _, err := m.w.ExecContext(ctx, m.q(q), args...); err != nil {
			return fail("ack events", err)
		}
	}
	return nil
}
