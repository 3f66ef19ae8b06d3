-- Garbage collection asks whether any repository holds a manifest with a
-- given digest (its bytes are stored as a blob).
CREATE INDEX manifests_by_digest ON manifests (digest);
