-- Transactional outbox: events are written in the same transaction as the state they
-- describe and published afterwards, so a crash between commit and publish loses nothing.
CREATE TABLE outbox (
    seq          bigserial PRIMARY KEY,
    topic        text        NOT NULL,
    record_key   text        NOT NULL,
    payload      bytea       NOT NULL,
    headers      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Events this service has already applied, so a redelivered record changes nothing.
CREATE TABLE processed_events (
    event_id     uuid        PRIMARY KEY,
    topic        text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);
