-- Account commands (issue 3): the default account rule (R3) held by the database itself.

-- A disconnected account is never a default, and a user has at most one default: should
-- older data say otherwise, the oldest default of each user is kept.
UPDATE accounts SET is_default = false WHERE is_default AND state = 'disconnected';
UPDATE accounts a SET is_default = false
WHERE a.is_default
  AND EXISTS (
      SELECT 1 FROM accounts b
      WHERE b.company_id = a.company_id AND b.user_id = a.user_id AND b.is_default
        AND (b.connected_at, b.account_id) < (a.connected_at, a.account_id)
  );
CREATE UNIQUE INDEX accounts_one_default_per_user ON accounts (company_id, user_id)
    WHERE is_default;
