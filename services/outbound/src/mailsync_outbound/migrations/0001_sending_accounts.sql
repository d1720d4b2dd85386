-- What outbound knows about each account, from mail.accounts.v1: enough to choose the
-- sending account (R3: the user's default) and to reach its SMTP server.
CREATE TABLE sending_accounts (
    account_id    text PRIMARY KEY,
    company_id    text        NOT NULL,
    user_id       text        NOT NULL,
    email         text        NOT NULL,
    account_type  text        NOT NULL,
    smtp_host     text,
    smtp_port     integer,
    smtp_security text,
    is_default    boolean     NOT NULL DEFAULT false,
    state         text        NOT NULL DEFAULT 'active',
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sending_accounts_by_user ON sending_accounts (company_id, user_id);
