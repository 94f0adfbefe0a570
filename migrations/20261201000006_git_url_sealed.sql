-- A git URL that carries credentials (https://user:token@host/...) is kept
-- sealed (AES-256-GCM, like secret env values) in git_url_sealed; git_url
-- then holds it with the credentials masked, for display.
ALTER TABLE services ADD COLUMN git_url_sealed TEXT;
