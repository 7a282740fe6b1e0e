"""Numbered schema migrations, applied in order and recorded in `schema_migrations`.

Append only: a released migration is never edited. `PRAGMA user_version` mirrors
the latest applied number so a newer database is recognised before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


MIGRATIONS: list[Migration] = [
    Migration(1, "initial", """
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'notice')),
    text TEXT NOT NULL,
    source TEXT,
    query_id INTEGER,
    created_at REAL NOT NULL
);
CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
CREATE TABLE query_log (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER,
    query TEXT NOT NULL,
    context_key TEXT NOT NULL DEFAULT '',
    answer TEXT,
    source TEXT CHECK (source IN ('neural', 'learned', 'template', 'forward')),
    latency_ms REAL,
    router_p REAL,
    validator_p REAL,
    confidence REAL,
    verified INTEGER,
    teacher_answer TEXT,
    error TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX query_log_by_source ON query_log(source);
CREATE TABLE training_examples (
    id INTEGER PRIMARY KEY,
    query TEXT NOT NULL,
    context TEXT NOT NULL DEFAULT '',
    context_key TEXT NOT NULL DEFAULT '',
    answer TEXT NOT NULL,
    origin TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'trained')),
    times_trained INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    trained_at REAL
);
CREATE INDEX training_examples_by_state ON training_examples(state, id);
CREATE TABLE learned_answers (
    id INTEGER PRIMARY KEY,
    norm_query TEXT NOT NULL,
    context_key TEXT NOT NULL DEFAULT '',
    query TEXT NOT NULL,
    answer TEXT NOT NULL,
    origin TEXT NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    UNIQUE (norm_query, context_key)
);
CREATE INDEX learned_answers_by_context ON learned_answers(context_key);
CREATE TABLE training_runs (
    id INTEGER PRIMARY KEY,
    started_at REAL NOT NULL,
    finished_at REAL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'cancelled', 'failed')),
    trigger TEXT NOT NULL DEFAULT 'manual',
    examples INTEGER NOT NULL DEFAULT 0,
    steps INTEGER NOT NULL DEFAULT 0,
    examples_per_s REAL,
    device TEXT,
    error TEXT
);
CREATE TABLE run_losses (
    run_id INTEGER NOT NULL REFERENCES training_runs(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    old_loss REAL NOT NULL,
    new_loss REAL NOT NULL,
    improvement_pct REAL NOT NULL,
    PRIMARY KEY (run_id, model)
);
CREATE TABLE loss_points (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES training_runs(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    step INTEGER NOT NULL,
    loss REAL NOT NULL,
    examples_per_s REAL
);
CREATE INDEX loss_points_by_run ON loss_points(run_id, model, step);
CREATE TABLE tool_calls (
    id INTEGER PRIMARY KEY,
    call_id TEXT NOT NULL,
    name TEXT NOT NULL,
    input_json TEXT NOT NULL,
    status TEXT NOT NULL,
    duration_ms REAL,
    summary TEXT NOT NULL DEFAULT '',
    result_text TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""),
    Migration(2, "agreement_labels_and_tokens", """
CREATE TABLE labels (
    id INTEGER PRIMARY KEY,
    query TEXT NOT NULL,
    context_key TEXT NOT NULL DEFAULT '',
    answer TEXT NOT NULL,
    source TEXT NOT NULL,
    label INTEGER NOT NULL CHECK (label IN (0, 1)),
    score REAL,
    origin TEXT NOT NULL,
    features TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL
);
CREATE INDEX labels_by_origin ON labels(origin, id);
ALTER TABLE query_log ADD COLUMN teacher_input_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE query_log ADD COLUMN teacher_output_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE query_log ADD COLUMN spot_checked INTEGER NOT NULL DEFAULT 0;
"""),
    Migration(3, "semantic_store_and_out_of_sample_calibration", """
ALTER TABLE learned_answers ADD COLUMN embedding BLOB;
ALTER TABLE learned_answers ADD COLUMN embedding_model TEXT NOT NULL DEFAULT '';
ALTER TABLE query_log ADD COLUMN credited INTEGER NOT NULL DEFAULT 1;
CREATE TABLE pair_labels (
    id INTEGER PRIMARY KEY,
    query TEXT NOT NULL,
    stored_query TEXT NOT NULL,
    context_key TEXT NOT NULL DEFAULT '',
    label INTEGER NOT NULL CHECK (label IN (0, 1)),
    features TEXT NOT NULL,
    origin TEXT NOT NULL,
    fitted INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE INDEX pair_labels_by_origin ON pair_labels(origin, id);
CREATE TABLE calibration_points (
    id INTEGER PRIMARY KEY,
    model TEXT NOT NULL,
    query TEXT NOT NULL,
    answer TEXT NOT NULL,
    features TEXT NOT NULL,
    agreed INTEGER NOT NULL CHECK (agreed IN (0, 1)),
    origin TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX calibration_points_by_model ON calibration_points(model, id);
CREATE TABLE skill_results (
    id INTEGER PRIMARY KEY,
    run_id INTEGER REFERENCES training_runs(id) ON DELETE CASCADE,
    skill TEXT NOT NULL,
    accuracy REAL NOT NULL,
    served REAL NOT NULL,
    held_out INTEGER NOT NULL,
    loss REAL,
    created_at REAL NOT NULL
);
CREATE INDEX skill_results_by_skill ON skill_results(skill, id);
ALTER TABLE run_losses ADD COLUMN measured_on TEXT NOT NULL DEFAULT 'training batch';
"""),
    # Sources are checked in code (`Store.log_query`, from the one source registry): adding a tier
    # is no table rebuild.
    Migration(4, "sources_checked_in_code", """
CREATE TABLE query_log_new (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER,
    query TEXT NOT NULL,
    context_key TEXT NOT NULL DEFAULT '',
    answer TEXT,
    source TEXT,
    latency_ms REAL,
    router_p REAL,
    validator_p REAL,
    confidence REAL,
    verified INTEGER,
    teacher_answer TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    teacher_input_tokens INTEGER NOT NULL DEFAULT 0,
    teacher_output_tokens INTEGER NOT NULL DEFAULT 0,
    spot_checked INTEGER NOT NULL DEFAULT 0,
    credited INTEGER NOT NULL DEFAULT 1
);
INSERT INTO query_log_new (id, conversation_id, query, context_key, answer, source, latency_ms, router_p,
    validator_p, confidence, verified, teacher_answer, error, created_at, teacher_input_tokens,
    teacher_output_tokens, spot_checked, credited)
SELECT id, conversation_id, query, context_key, answer, source, latency_ms, router_p, validator_p, confidence,
    verified, teacher_answer, error, created_at, teacher_input_tokens, teacher_output_tokens, spot_checked,
    credited FROM query_log;
DROP TABLE query_log;
ALTER TABLE query_log_new RENAME TO query_log;
CREATE INDEX query_log_by_source ON query_log(source);
"""),
    Migration(5, "calibration_points_name_their_generator", """
ALTER TABLE calibration_points ADD COLUMN generator_run INTEGER;
"""),
    # What Claude's answer cost, kept with the answer: a local answer that reuses it saved exactly
    # that. NULL where no upstream measured it (the offline teacher, a corrected spot check).
    # The request log is `serve`'s traffic, one row a request; client tokens are kept as hashes.
    Migration(6, "measured_usage_request_log_client_tokens", """
ALTER TABLE learned_answers ADD COLUMN usage_input_tokens INTEGER;
ALTER TABLE learned_answers ADD COLUMN usage_output_tokens INTEGER;
CREATE TABLE request_log (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    route TEXT NOT NULL,
    status INTEGER NOT NULL,
    source TEXT,
    model TEXT,
    token_name TEXT,
    latency_ms REAL NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    saved_input_tokens INTEGER NOT NULL DEFAULT 0,
    saved_output_tokens INTEGER NOT NULL DEFAULT 0,
    saved_usd REAL NOT NULL DEFAULT 0,
    error TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX request_log_by_time ON request_log(created_at);
CREATE TABLE client_tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    revoked_at REAL
);
"""),
]

LATEST_VERSION = MIGRATIONS[-1].version
