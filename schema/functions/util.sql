-- Helpers with no table of their own.

-- genq_uuid7(): a UUIDv7 (RFC 9562): 48-bit Unix millisecond timestamp, the
-- sub-millisecond fraction in the next 12 bits (the RFC's "increased clock
-- precision" method, as PostgreSQL 18's uuidv7() does), then random bits,
-- version 7 and variant 10. Ids sort by creation time to the microsecond,
-- which queue positions and cursor pagination (id desc) rely on.
create or replace function genq_uuid7() returns uuid
language plpgsql volatile parallel safe as $$
declare
  b bytea := uuid_send(gen_random_uuid());
  us bigint := floor(extract(epoch from clock_timestamp()) * 1000000)::bigint;
  ms bigint := us / 1000;
  frac int := ((us % 1000) * 4096 / 1000)::int;  -- 0..4095
begin
  b := overlay(b placing substring(int8send(ms) from 3) from 1 for 6);
  b := set_byte(b, 6, 112 | (frac >> 8));  -- version 7, high 4 bits of frac
  b := set_byte(b, 7, frac & 255);
  b := set_byte(b, 8, (get_byte(b, 8) & 63) | 128);  -- variant 10
  return encode(b, 'hex')::uuid;
end $$;

-- genq_ts(t): RFC 3339 UTC with milliseconds and 'Z' (null stays null).
create or replace function genq_ts(p_t timestamptz) returns text
language sql stable as $$
  select to_char(p_t at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;
