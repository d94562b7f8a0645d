// Generated from api/openapi.yaml by `npm run generate` (clients/typescript/generate.mjs).
// Do not edit: change api/openapi.yaml and generate again.

export interface paths {
    "/healthz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Liveness */
        get: operations["healthz"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/readyz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Readiness (PostgreSQL round trip, Redis connection, API keys loaded) */
        get: operations["readyz"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/metrics": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Prometheus metrics
         * @description Prometheus text exposition format 0.0.4 (docs/metrics.md): this
         *     process' HTTP requests by route template, method and code and
         *     their latency, its submissions and open streams, `process_*`; and
         *     the fleet as PostgreSQL has it (queue per kind, jobs queued and
         *     running, the dead-letter set, credits held, webhook deliveries),
         *     read at most once a second and waited for a second at most. While
         *     PostgreSQL is down it still answers 200, with the last values and
         *     `genq_fleet_up 0`. No authentication: expose it only to the
         *     scraper's network.
         */
        get: operations["getMetrics"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/jobs": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller's jobs, newest first */
        get: operations["listJobs"];
        put?: never;
        /**
         * Submit a job
         * @description Validates, then in one PostgreSQL transaction creates the job and
         *     holds its full price against the caller's credits. 402 creates
         *     nothing: `insufficient_credits`, or `credit_debt` while a Stripe
         *     refund left a debt (GET /v1/credits `debt`) until a purchase pays
         *     it. With an `Idempotency-Key`, repeating the same request answers
         *     as the first answer did (202) with the same job as it is now and
         *     `Idempotent-Replayed: true`; the same key with another body is 409.
         *     Keys are per user: every token and API key of one user shares
         *     them, another user's same key is that user's own. A deleted
         *     account (DELETE /v1/me) is 401 `account_deleted`, nothing written. A key expires
         *     24 h after the job it made (Stripe's rule): from then on the same
         *     key, with any body, makes a new job, which the key names for its
         *     own 24 h.
         */
        post: operations["submitJob"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/jobs/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * One job (cheap; poll it)
         * @description Served from a cache that every committed change of the job refreshes at once; queue_position and next_attempt_at, and a change whose notice was lost, are at most 5 s old.
         */
        get: operations["getJob"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/jobs/{id}/cancel": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Cancel a job
         * @description A queued or running job becomes `canceled` at once: its unfinished
         *     steps are canceled and the worker running it is fenced out. What a
         *     cancel costs: steps that already succeeded stay captured; an
         *     unfinished step whose provider generation was already created (its
         *     `provider_ref` is set: a Luma video or image generation, a Hedra
         *     lip-sync job; a storyboard step never has one) captures its own
         *     price, because the provider charges genq for it whatever happens
         *     next (Luma refunds only generations that fail, not deleted ones;
         *     Hedra has no cancel) — so genq does not delete that generation at
         *     Luma either; every other step's price is released. A generation
         *     created but not yet recorded when the cancel lands is deleted at
         *     Luma and not charged. So `cost.captured` after a cancel is the sum
         *     of the prices of the steps that succeeded or had their generation
         *     created. A job already terminal is returned unchanged (also 200),
         *     so canceling twice is harmless. No body.
         */
        post: operations["cancelJob"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/jobs/{id}/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Follow a job (server-sent events)
         * @description A `text/event-stream`: an event named `job` whose `data` is the job
         *     object (the same JSON as `GET /v1/jobs/{id}`, on one line) first,
         *     then one more for every change of its status, steps or progress.
         *     After the event that shows the job terminal the server closes the
         *     stream. It also closes it, without a last event, within about 10 s
         *     after the caller's token has expired (a browser's EventSource then
         *     reconnects with its fresh token). Comment lines (`:`) may come
         *     between events to keep an idle connection open; clients ignore them.
         *     A user holds at most GENQ_MAX_STREAMS_PER_USER streams (32) at once,
         *     counted across every API process; one more is 429
         *     `too_many_streams`.
         */
        get: operations["streamJobEvents"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/uploads": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Upload media for a job
         * @description The raw bytes are the body, and `Content-Type` says what they are;
         *     the bytes' signature must agree (a PNG sent as image/jpeg is 415).
         *     The upload is kept while jobs need it: 24 hours if no job uses it,
         *     else until the jobs using it are terminal. Its id goes into a job's
         *     input (`image_upload_id`, `audio_upload_id`, `keyframe_upload_id`,
         *     `avatar_upload_id`, `voice_upload_id`). A body over the limit
         *     (`GENQ_UPLOAD_MAX_BYTES`, default 25 MiB) is refused with 413 on its
         *     `Content-Length`, before it is read. A deleted account (DELETE
         *     /v1/me) is 401 `account_deleted`; nothing is kept.
         */
        post: operations["createUpload"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/uploads/{id}/content": {
        parameters: {
            query: {
                /** @description unix seconds; the URL is valid up to and including this second */
                expires: string;
                sig: string;
            };
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        /**
         * An upload's bytes, through a signed URL (for providers)
         * @description Providers take inputs (a Luma keyframe) only as a public URL, so
         *     genq-worker signs a short-lived one and hands it over:
         *     `<GENQ_PUBLIC_URL>/v1/uploads/<id>/content?expires=<unix>&sig=<hex>`
         *     with `sig` the lowercase hex HMAC-SHA256 of `upload:<id>:<expires>`
         *     under `GENQ_URL_SIGNING_KEY`, valid for 1 hour. No bearer token: the
         *     signature is the capability. A signature that is missing, malformed,
         *     does not match, has expired or expires more than 24 hours ahead, an
         *     upload that does not exist or was deleted (uploads are swept once
         *     the jobs using them are terminal), and a genq-api without
         *     `GENQ_URL_SIGNING_KEY` all answer the same 404. `HEAD` answers the
         *     same status and headers without the body.
         */
        get: operations["getUploadContent"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        /**
         * An upload's headers, through a signed URL (for providers)
         * @description What GET answers for the same URL, without the body.
         */
        head: operations["headUploadContent"];
        patch?: never;
        trace?: never;
    };
    "/v1/callbacks/luma/{token}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * A Luma callback, taken as a wake-up (for Luma)
         * @description With `GENQ_CALLBACK_URL` set on a worker, each Luma generation it
         *     creates carries `callback_url` =
         *     `<GENQ_CALLBACK_URL>/v1/callbacks/luma/<job id>.<mac>`, with `mac`
         *     the first 32 lowercase hex digits of HMAC-SHA256 of
         *     `luma-callback:<job id>` under `GENQ_URL_SIGNING_KEY`. Luma POSTs
         *     the Generation there on its state changes (unsigned, up to 3 tries).
         *     genq never trusts it: the body is not read (at most 64 KiB is
         *     accepted); a valid token only makes the worker holding the job poll
         *     Luma early, at most once a second per step, and the job's state
         *     comes from that poll. No bearer token: the token is the capability.
         *     A token that is malformed or not genq's, and a genq-api without
         *     `GENQ_URL_SIGNING_KEY`, answer the same 404 and change nothing.
         */
        post: operations["lumaCallback"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/assets/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The bytes of a stored result
         * @description The asset's bytes with its `Content-Type` and `Content-Length`.
         *     Assets never change, so the response may be cached privately
         *     (`Cache-Control: private, max-age=31536000, immutable`). A large
         *     asset (over 256 KiB) is streamed and its connection closes after
         *     it; a client that stops reading is reset once nothing moved for
         *     GENQ_WRITE_TIMEOUT_MS. At most 64 large downloads run at once per
         *     API process: beyond, 503 with `Retry-After`.
         */
        get: operations["getAsset"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/credits": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller's credits */
        get: operations["getCredits"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/credits/ledger": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The caller's ledger, newest first
         * @description Every movement of the caller's credits, cursor-paginated: pass the
         *     `next_cursor` of a page as `cursor` for the next one (null on the
         *     last page).
         */
        get: operations["listLedger"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/me": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /**
         * Delete the caller's account
         * @description In one transaction: the account is marked deleted, every API key of
         *     the caller is revoked, and every queued or running job is canceled
         *     as POST /v1/jobs/{id}/cancel does (its worker fenced out and
         *     stopped; a step whose paid provider generation had started is
         *     charged, the rest of its hold released), so nothing stays held. From then on the
         *     caller's tokens and keys are refused on every API process, and new
         *     jobs and uploads are refused (401 `account_deleted`). The account's
         *     data (jobs, steps, uploads, assets and their stored bytes, webhook
         *     deliveries and secrets, API keys, limits' state, Stripe customer and
         *     subscription links) is purged by the sweeper at `purge_after`, 30
         *     days later; the ledger is kept 2 years. Calling it again changes
         *     nothing. Cookie-authenticated calls must pass the Origin check.
         */
        delete: operations["deleteMe"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/me/export": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Everything genq keeps about the caller, as one JSON document
         * @description Streamed page by page (the next page is read once the last has been
         *     sent), so any number of jobs costs bounded memory; the response has
         *     no Content-Length and ends with the connection. A failure after the
         *     first bytes resets the connection: a truncated body is not valid
         *     JSON. At most 16 exports run at once per API process (503 with
         *     `Retry-After` beyond).
         */
        get: operations["exportMe"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/usage": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The caller's usage per day and job kind
         * @description Per UTC day and job kind, from the caller's jobs and ledger (never a
         *     separate counter): `submitted`, the jobs created that day;
         *     `succeeded`, `failed`, `canceled`, the jobs that ended that day in
         *     that status; `credits_spent`, the credits captured that day (the
         *     ledger's capture rows, under their job's kind). One row per day and
         *     kind where something happened, by day then kind. `from` and `to`
         *     are UTC days, both included; by default the last 30 days (to =
         *     today); at most 366 days. A bad date, `from` after `to` or a longer
         *     range is 400 naming the field.
         */
        get: operations["getUsage"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks/stripe": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Stripe's webhook events (for Stripe)
         * @description Configure a Stripe webhook endpoint with this URL and put its signing
         *     secret in `STRIPE_WEBHOOK_SECRET` (several, comma-separated, while
         *     one is rolled). No bearer token: the `Stripe-Signature` header
         *     (`t=<unix>,v1=<hex>[,v1=…]`, HMAC-SHA256 of `<t>.<raw body>` keyed
         *     with the secret) is the capability; any v1 may match any secret, v0
         *     and unknown keys are ignored, `t` must be within 300 s of now. At
         *     most 256 KiB of body.
         *
         *     Handled (docs/credits.md): `checkout.session.completed` (paid),
         *     `checkout.session.async_payment_succeeded` and `.async_payment_failed`
         *     (payment mode: `client_reference_id` is the user, `metadata.credits`
         *     the credits; granted once per session; subscription mode: links the
         *     customer and subscription to the user), `charge.refunded` (takes back
         *     the refunded share; what was spent becomes `debt`), `invoice.paid`
         *     (a subscription's credits per `stripe_prices`, once per invoice),
         *     `customer.subscription.created|updated|deleted` (the user's plan).
         *     Any other type is acknowledged and ignored. Every event is applied
         *     in one transaction: redeliveries, any order and concurrent
         *     deliveries are safe.
         */
        post: operations["stripeWebhook"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/admin/stats": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Queues per kind and totals
         * @description genq_fleet_status, what `genqctl status` reads: per kind queued
         *     (ready, waiting for a retry), the oldest ready job's age, running,
         *     dead; the totals. Admins only: anyone else gets 404 on every
         *     /v1/admin path (docs/admin.md).
         */
        get: operations["adminStats"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/admin/workers": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The live workers (the registry in Redis) */
        get: operations["adminWorkers"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/admin/workers/{id}/quiet": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Make a worker quiet (no new job; it finishes what it holds) */
        post: operations["adminWorkerQuiet"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/admin/workers/{id}/stop": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Stop a worker (it finishes or hands back its jobs, exits 0) */
        post: operations["adminWorkerStop"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/admin/providers": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Provider limits (slots, window, pause, rate, breaker) */
        get: operations["adminProviders"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/admin/jobs": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Any user's failed, dead, canceled, queued or running jobs
         * @description failed (the default; dead or not), dead and canceled jobs, the last
         *     to end first; queued and running jobs, the newest first. Pass
         *     next_cursor back as cursor for the next page.
         */
        get: operations["adminJobsList"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/admin/jobs/retry": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Retry the failed or dead jobs matching a filter (bounded; dry run)
         * @description Oldest first, at most max per request (more: true when more
         *     matched). Each retry holds what the job has not captured again and
         *     is recorded in the audit; a job the user cannot pay for, or whose
         *     inputs are gone, is named in not_retried. dry_run changes nothing.
         */
        post: operations["adminJobsRetry"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/admin/jobs/{id}/retry": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Retry one failed job (dead or not) */
        post: operations["adminJobRetry"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/admin/jobs/{id}/cancel": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Cancel any user's queued or running job
         * @description As its user would cancel it; an ended job is answered as it is.
         */
        post: operations["adminJobCancel"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/admin/credits/grant": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Grant credits to a user (once per Idempotency-Key) */
        post: operations["adminCreditsGrant"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/admin/actions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The audit of admin actions, newest first */
        get: operations["adminActions"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/admin/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The fleet as server-sent events (the dashboard's stream)
         * @description `stats` (as GET /v1/admin/stats: at once, within a second of a job's
         *     change, at least every 5 s), `workers` and `providers` (every 2 s),
         *     `action` (an audit row, as it is committed); `: ping` after 15 s of
         *     silence. Counts against GENQ_MAX_STREAMS_PER_USER; ends with the
         *     token.
         */
        get: operations["adminEvents"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The admin dashboard (HTML; its files under /admin/)
         * @description Static files compiled into genq-api, under a strict
         *     Content-Security-Policy (this origin only, no inline script or
         *     style). The page signs in with a pasted admin token.
         */
        get: operations["adminDashboard"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        /** The admin dashboard's headers */
        head: operations["headAdminDashboard"];
        patch?: never;
        trace?: never;
    };
    "/admin/{file}": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description one of the page's files: admin.js, admin.css, favicon.svg, index.html */
                file: string;
            };
            cookie?: never;
        };
        /** A file of the admin dashboard (its script, style sheet, icon) */
        get: operations["getAdminFile"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        /** A dashboard file's headers */
        head: operations["headAdminFile"];
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        Error: {
            error: {
                /**
                 * @example invalid_json
                 * @example invalid_request
                 * @example invalid_signature
                 * @example signature_expired
                 * @example invalid_event
                 * @example stripe_disabled
                 * @example invalid_input
                 * @example unauthorized
                 * @example account_deleted
                 * @example insufficient_credits
                 * @example credit_debt
                 * @example not_found
                 * @example method_not_allowed
                 * @example idempotency_conflict
                 * @example payload_too_large
                 * @example unsupported_media_type
                 * @example request_timeout
                 * @example headers_too_large
                 * @example cross_site_request
                 * @example too_many_streams
                 * @example unavailable
                 * @example not_failed
                 * @example inputs_gone
                 */
                code: string;
                /** @description Names the offending field for 400s, e.g. `input.prompt is required`. */
                message: string;
                request_id: string;
            };
        };
        Readiness: {
            /**
             * @description ready when the three below are ok
             * @enum {unknown}
             */
            status: "ready" | "unavailable";
            /**
             * @description a round trip (select 1) answered
             * @enum {unknown}
             */
            postgres: "ok" | "down";
            /**
             * @description connected
             * @enum {unknown}
             */
            redis: "ok" | "down";
            /**
             * @description this process has loaded the live API keys and deleted accounts
             * @enum {unknown}
             */
            access: "ok" | "loading";
        };
        /** @enum {unknown} */
        Kind: "storyboard" | "image" | "video" | "lipsync" | "campaign";
        LedgerRow: {
            /** @description The row's id (also a cursor). */
            id: string;
            /**
             * @description grant (credits added: sign-up, operator, Stripe purchase or
             *     subscription invoice), hold and release (a job's price held and
             *     let go), capture (a step's price spent), reversal (a refund taking
             *     credits back; what was spent becomes debt), repay (a grant paying
             *     a debt), adjust (an operator's correction), carry (the sums of
             *     rows older than 2 years, folded into one row per account).
             * @enum {string}
             */
            movement: "grant" | "hold" | "capture" | "release" | "adjust" | "reversal" | "repay" | "carry";
            /** @description The change of the balance. */
            amount: number;
            /** @description The change of what is held. */
            held: number;
            /** @description The change of the debt. */
            debt: number;
            /** Format: uuid */
            job_id: string | null;
            /** @description The Stripe Checkout Session or invoice of a purchase, subscription grant or refund. */
            ref: string | null;
            note: string | null;
            /** Format: date-time */
            created_at: string;
        };
        Usage: {
            /** Format: date */
            from: string;
            /** Format: date */
            to: string;
            /** @description One row per UTC day and kind where something happened, by day then kind. */
            days: {
                /** Format: date */
                day: string;
                kind: components["schemas"]["Kind"];
                /** @description Jobs created that day. */
                submitted: number;
                /** @description Jobs that succeeded that day. */
                succeeded: number;
                /** @description Jobs that failed that day. */
                failed: number;
                /** @description Jobs canceled that day. */
                canceled: number;
                /** @description Credits captured that day by jobs of this kind. */
                credits_spent: number;
            }[];
        };
        /** @enum {unknown} */
        Status: "queued" | "running" | "succeeded" | "failed" | "canceled";
        /** @description A job to run: `kind` names it and `input` is that kind's input. */
        Submission: components["schemas"]["StoryboardSubmission"] | components["schemas"]["ImageSubmission"] | components["schemas"]["VideoSubmission"] | components["schemas"]["LipsyncSubmission"] | components["schemas"]["CampaignSubmission"];
        StoryboardSubmission: {
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            kind: "storyboard";
            webhook_url?: components["schemas"]["WebhookUrl"];
            input: components["schemas"]["StoryboardInput"];
        };
        ImageSubmission: {
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            kind: "image";
            webhook_url?: components["schemas"]["WebhookUrl"];
            input: components["schemas"]["ImageInput"];
        };
        VideoSubmission: {
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            kind: "video";
            webhook_url?: components["schemas"]["WebhookUrl"];
            input: components["schemas"]["VideoInput"];
        };
        LipsyncSubmission: {
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            kind: "lipsync";
            webhook_url?: components["schemas"]["WebhookUrl"];
            input: components["schemas"]["LipsyncInput"];
        };
        CampaignSubmission: {
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            kind: "campaign";
            webhook_url?: components["schemas"]["WebhookUrl"];
            input: components["schemas"]["CampaignInput"];
        };
        /**
         * Format: uri
         * @description Where genq POSTs the job when it ends (succeeded, failed, canceled), at
         *     least once, retried with backoff for 24 h (docs/webhooks.md). https only
         *     (http where the operator set GENQ_WEBHOOK_ALLOW_HTTP=1), no user name or
         *     password; an address of this machine, a private, shared, link-local
         *     (cloud metadata, 169.254.169.254), multicast or reserved range is refused,
         *     as an IP literal here (400 naming webhook_url) and, for a name, after it
         *     is resolved at delivery. Redirects are not followed; the receiver has
         *     10 s to answer 2xx (410 stops the deliveries).
         *
         *     The request is signed per Standard Webhooks: headers `webhook-id`
         *     (`msg_...`, the same on every retry and replay: drop duplicates by it),
         *     `webhook-timestamp` (Unix seconds) and `webhook-signature`
         *     (`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` under the user's
         *     `whsec_` secret; two space-separated signatures while a rotated secret
         *     is in its grace). The body is
         *     `{"type": "job.succeeded"|"job.failed"|"job.canceled", "timestamp": "...",
         *     "data": <the job, as GET /v1/jobs/{id} answers it>}`. Verify it with a
         *     Standard Webhooks library, e.g. the `standardwebhooks` npm package.
         */
        WebhookUrl: string;
        /**
         * @default 16:9
         * @enum {unknown}
         */
        AspectRatio: "16:9" | "9:16" | "1:1" | "4:3" | "3:4" | "21:9" | "9:21";
        /**
         * Format: uuid
         * @description the id of one of the caller's uploads
         */
        UploadId: string;
        StoryboardInput: {
            prompt: string;
            /** @default 4 */
            scenes: number;
            style?: string;
            aspect_ratio?: components["schemas"]["AspectRatio"];
        };
        ImageInput: {
            prompt: string;
            aspect_ratio?: components["schemas"]["AspectRatio"];
        };
        VideoInput: {
            prompt: string;
            aspect_ratio?: components["schemas"]["AspectRatio"];
            /**
             * @default 5s
             * @enum {unknown}
             */
            duration: "5s" | "9s";
            /** @description an image upload: the first frame. The provider fetches it from a signed URL of genq-api (GET /v1/uploads/{id}/content), so the job fails with keyframes_unconfigured unless GENQ_PUBLIC_URL and GENQ_URL_SIGNING_KEY are set */
            keyframe_upload_id?: components["schemas"]["UploadId"];
        };
        /** @description image_upload_id is required. video_asset_id is accepted by the schema but refused with 400 (the lip-sync provider animates a still image only). */
        LipsyncInput: {
            /** @description an image upload: the face */
            image_upload_id?: components["schemas"]["UploadId"];
            /**
             * Format: uuid
             * @description one of the caller's video assets
             */
            video_asset_id?: string;
            /** @description an audio upload: the voice */
            audio_upload_id: components["schemas"]["UploadId"];
        };
        CampaignInput: {
            prompt: string;
            /** @default 4 */
            scenes: number;
            style?: string;
            aspect_ratio?: components["schemas"]["AspectRatio"];
            /** @description an image upload */
            avatar_upload_id: components["schemas"]["UploadId"];
            /** @description an audio upload */
            voice_upload_id: components["schemas"]["UploadId"];
        };
        Upload: {
            /** Format: uuid */
            id: string;
            /** @enum {unknown} */
            content_type: "image/png" | "image/jpeg" | "image/webp" | "audio/mpeg" | "audio/wav" | "audio/mp4";
            bytes: number;
            sha256: string;
            /**
             * Format: date-time
             * @description deleted then if no job uses it
             */
            expires_at: string;
        };
        Asset: {
            /** Format: uuid */
            id: string;
            /** @description the step that made it */
            step: string;
            /** @enum {unknown} */
            kind: "image" | "video" | "audio";
            content_type: string;
            bytes: number;
            sha256: string;
            /** @description /v1/assets/{id}: the bytes, for the owner */
            url: string;
        };
        /**
         * @description A job as every endpoint shows it (GET /v1/jobs/{id}, the list, the
         *     event stream, a webhook's `data`). Every field is always there; the
         *     ones that do not apply are null.
         */
        Job: {
            /**
             * Format: uuid
             * @description UUIDv7: sorts by creation time
             */
            id: string;
            kind: components["schemas"]["Kind"];
            status: components["schemas"]["Status"];
            /** Format: date-time */
            created_at: string;
            /** Format: date-time */
            started_at: string | null;
            /** Format: date-time */
            finished_at: string | null;
            /**
             * Format: date-time
             * @description When the job entered the dead-letter set: it failed for good on
             *     retryable errors (its attempts ran out, or its runs kept dying
             *     with their workers: error code worker_lost or lease_expired).
             *     Null otherwise, and again once an operator retries it.
             */
            dead_at: string | null;
            /** @description runs so far; an operator retry starts it again at 0 */
            attempt: number;
            max_attempts: number;
            /** @description 1-based, while queued */
            queue_position: number | null;
            /**
             * Format: date-time
             * @description when a retry is due
             */
            next_attempt_at: string | null;
            /** @description the submission's input, as given */
            input: {
                [key: string]: unknown;
            };
            /** @description the submission's webhook_url; absent when it had none */
            webhook_url?: string;
            /**
             * @description held + captured + released = price at every moment. captured:
             *     the prices of the steps that succeeded, and of a canceled job's
             *     steps whose provider generation had been created (see the
             *     cancel); released: what a failed or canceled job no longer holds.
             */
            cost: {
                price: number;
                held: number;
                captured: number;
                released: number;
            };
            steps: components["schemas"]["Step"][];
            /** @description What the job made so far; `assets` grows as steps store results. */
            output: {
                storyboard?: components["schemas"]["Storyboard"];
                assets: components["schemas"]["Asset"][];
            };
            error: components["schemas"]["JobError"] | null;
        };
        Step: {
            name: string;
            provider: string;
            /**
             * @description Steps of one stage run in parallel (a campaign's videos); a
             *     stage starts once the one before it has succeeded.
             */
            stage: number;
            /** @enum {unknown} */
            status: "pending" | "running" | "succeeded" | "failed" | "canceled";
            attempt: number;
            /** @description while running, when the provider reports it; 1 once succeeded */
            progress: number | null;
            provider_ref: string | null;
            error: components["schemas"]["JobError"] | null;
        };
        Storyboard: {
            title: string;
            scenes: {
                index: number;
                visual_prompt: string;
                narration: string;
                duration_s: number;
            }[];
        };
        JobError: {
            code: string;
            message: string;
            /** @description whether genq retries it (a job's error: it did not) */
            retryable: boolean;
        };
        AdminStats: {
            /** Format: date-time */
            at: string;
            kinds: {
                kind: components["schemas"]["Kind"];
                queued: number;
                /** @description queued and due now */
                ready: number;
                /** @description queued with next_attempt_at ahead */
                retry_waiting: number;
                /** Format: date-time */
                oldest_ready_at?: string | null;
                /** @description how long the ready job waiting longest has waited */
                oldest_age_s?: number | null;
                /** Format: date-time */
                next_retry_at?: string | null;
                running: number;
                /** @description in the dead-letter set */
                dead: number;
            }[];
            queued: number;
            ready: number;
            retry_waiting: number;
            running: number;
            dead: number;
            running_by_worker?: {
                worker_id?: string;
                running?: number;
                /** Format: date-time */
                lease_until?: string;
            }[];
        };
        AdminWorkers: {
            /** @description Redis's clock, Unix ms */
            at_ms: number;
            workers: {
                id?: string;
                host?: string;
                pid?: number;
                version?: string;
                kinds?: components["schemas"]["Kind"][];
                concurrency?: number;
                in_flight?: number;
                jobs_done?: number;
                /** @enum {unknown} */
                state?: "running" | "quiet" | "stopping";
                /** Format: date-time */
                started_at?: string;
                last_beat_ms?: number;
                last_beat_age_ms?: number;
                /** @description how often it beats (GENQ_WORKER_BEAT_MS) */
                beat_ms?: number;
                /** @description how long its record outlives its last beat (GENQ_WORKER_TTL_MS) */
                ttl_ms?: number;
            }[];
        };
        AdminProviders: {
            providers: {
                /** @enum {unknown} */
                provider?: "openai" | "luma" | "hedra";
                /** @description 0: no limit */
                max_in_flight?: number;
                window?: number;
                in_use?: number;
                paused?: boolean;
                paused_for_ms?: number | null;
                rate_per_minute?: number;
                /** @enum {unknown} */
                breaker?: "closed" | "open" | "half_open" | "forced_open";
                failures?: number;
                breaker_trips?: number;
                rate_limited?: number;
            }[];
        };
        AdminJobRow: {
            /** Format: uuid */
            id: string;
            user_id: string;
            kind: components["schemas"]["Kind"];
            status: components["schemas"]["Status"];
            attempt?: number;
            max_attempts?: number;
            /** @description operator retries so far */
            retries?: number;
            /** Format: date-time */
            created_at?: string;
            /** Format: date-time */
            started_at?: string | null;
            /** Format: date-time */
            finished_at?: string | null;
            /** Format: date-time */
            dead_at?: string | null;
            /** Format: date-time */
            next_attempt_at?: string | null;
            worker_id?: string | null;
            price?: number;
            error?: Record<string, never> | null;
        };
        AdminJobPage: {
            data: components["schemas"]["AdminJobRow"][];
            next_cursor: string | null;
        };
        AdminRetryFilter: {
            /**
             * @default dead
             * @enum {unknown}
             */
            status: "dead" | "failed";
            kind?: components["schemas"]["Kind"];
            user_id?: string;
            /** @description died (dead) or failed at or after: RFC 3339, or a duration before now */
            since?: string;
            /** @default 100 */
            max: number;
            max_attempts?: number;
            /** @default false */
            dry_run: boolean;
        };
        AdminRetryResult: {
            dry_run: boolean;
            /** @description jobs taken (at most max) */
            matched: number;
            /** @description more jobs matched than max */
            more: boolean;
            /** @description dry run: the jobs a retry would take */
            jobs?: string[];
            retried?: {
                /** Format: uuid */
                id?: string;
                user_id?: string;
                kind?: components["schemas"]["Kind"];
            }[];
            not_retried?: {
                /** Format: uuid */
                id?: string;
                user_id?: string;
                /** @enum {unknown} */
                code?: "insufficient_credits" | "inputs_gone" | "not_failed" | "not_found" | "invalid_argument";
                message?: string;
            }[];
        };
        AdminGrantRequest: {
            user_id: string;
            credits: number;
            reason: string;
        };
        AdminGrant: {
            user_id: string;
            granted: number;
            credits: {
                balance?: number;
                held?: number;
                available?: number;
                debt?: number;
            };
            replayed: boolean;
            action?: components["schemas"]["AdminAction"] | null;
        };
        /** @enum {unknown} */
        AdminActionName: "job.retry" | "job.cancel" | "credits.grant" | "worker.quiet" | "worker.stop";
        AdminAction: {
            id: number;
            /** Format: date-time */
            at: string;
            actor: {
                /** @enum {unknown} */
                kind: "user" | "api_key" | "genqctl";
                /** @description a user id, an API key's id, or <os user>@<host> */
                id: string;
                /** @description an API key's user */
                user?: string;
            };
            action: components["schemas"]["AdminActionName"];
            target: string;
            request_id?: string | null;
            detail?: Record<string, never>;
        };
        AdminActionPage: {
            data: components["schemas"]["AdminAction"][];
            next_cursor: string | null;
        };
    };
    responses: {
        /**
         * @description No valid session token or API key (`unauthorized`), or any of a
         *     deleted account (`account_deleted`). Counts against the caller's
         *     address (see 429).
         */
        Unauthorized: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /**
         * @description `cross_site_request`: authenticated by the `__session` cookie from a
         *     site that is not allowed (see the `session_cookie` scheme); nothing
         *     changed.
         */
        CrossSite: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /**
         * @description `too_many_requests`, in place of a 401: the caller's address used
         *     up its refused unauthenticated requests (GENQ_IP_REFUSALS_BURST,
         *     refilling at GENQ_IP_REFUSALS_PER_MINUTE).
         */
        RefusalsExceeded: {
            headers: {
                "Retry-After": number;
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /**
         * @description `unavailable`: PostgreSQL, Redis or storage cannot be reached, or
         *     this process is at a bound (large downloads, exports at once);
         *     nothing was written. Retry, after `Retry-After` seconds when given.
         */
        Unavailable: {
            headers: {
                "Retry-After"?: number;
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /**
         * @description `payload_too_large`: the body is over the route's limit (answered
         *     on its `Content-Length` before it is read, or as soon as it passes
         *     the limit); the connection is closed.
         */
        PayloadTooLarge: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description The request's headers are over GENQ_MAX_HEADER_BYTES (`headers_too_large`); the connection is closed. */
        HeadersTooLarge: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description An error, in the error shape. */
        Error: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /**
         * @description `not_found`: no such thing — and, for a caller who is not an admin,
         *     the answer of every /v1/admin path and method.
         */
        AdminNotFound: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description The job as GET /v1/jobs/{id} shows it, with its user. */
        AdminJob: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Job"] & {
                    user_id: string;
                };
            };
        };
        /** @description Redis took the command (published, and left for the worker's next beat). */
        AdminWorkerCommand: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": {
                    worker_id: string;
                    /** @enum {unknown} */
                    command: "quiet" | "stop";
                    action: components["schemas"]["AdminAction"];
                };
            };
        };
    };
    parameters: {
        JobId: string;
        /** @description a worker's id, host:pid:random (percent-encoded) */
        WorkerId: string;
        /** @description an RFC 3339 date-time, or a duration before now: 90s, 10m, 2h, 1d, 1w */
        Since: string;
    };
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    healthz: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The process is up. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        /** @constant */
                        status: "ok";
                    };
                };
            };
            431: components["responses"]["HeadersTooLarge"];
        };
    };
    readyz: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Both dependencies reachable. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Readiness"];
                };
            };
            431: components["responses"]["HeadersTooLarge"];
            /** @description A dependency is down; the body names it. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Readiness"];
                };
            };
        };
    };
    getMetrics: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The metrics. */
            200: {
                headers: {
                    "Cache-Control"?: "no-store";
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example # HELP genq_queue_jobs Jobs queued, per kind: ready to run now, or waiting for a retry's time (fleet-wide, from PostgreSQL).
                     *     # TYPE genq_queue_jobs gauge
                     *     genq_queue_jobs{kind="video",state="ready"} 3
                     */
                    "text/plain": string;
                };
            };
            431: components["responses"]["HeadersTooLarge"];
        };
    };
    listJobs: {
        parameters: {
            query?: {
                status?: components["schemas"]["Status"];
                kind?: components["schemas"]["Kind"];
                limit?: number;
                /** @description next_cursor of the previous page */
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description One page. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        data: components["schemas"]["Job"][];
                        next_cursor: string | null;
                    };
                };
            };
            /** @description `invalid_request`: a bad `status`, `kind`, `limit` or `cursor`; the message names it. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            401: components["responses"]["Unauthorized"];
            429: components["responses"]["RefusalsExceeded"];
            503: components["responses"]["Unavailable"];
        };
    };
    submitJob: {
        parameters: {
            query?: never;
            header?: {
                /** @description Names the job this request makes for 24 h after it was made. */
                "Idempotency-Key"?: string;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["Submission"];
            };
        };
        responses: {
            /**
             * @description Created and queued; or an idempotent replay of an earlier
             *     submission (then with `Idempotent-Replayed: true`).
             */
            202: {
                headers: {
                    /** @description `true` on a replay of an earlier submission with the same key. */
                    "Idempotent-Replayed"?: "true";
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Job"];
                };
            };
            /**
             * @description Bad JSON (`invalid_json`), a bad field (`invalid_request`), or an
             *     upload id the input names that is not the caller's, has expired,
             *     or is of the wrong media class (`invalid_input`, e.g.
             *     `input.audio_upload_id: no such upload`). The message names the
             *     field.
             */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            401: components["responses"]["Unauthorized"];
            /**
             * @description `insufficient_credits` (the price is over what is available), or
             *     `credit_debt` while a refund's debt is unpaid; nothing created.
             */
            402: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            403: components["responses"]["CrossSite"];
            /** @description `idempotency_conflict`: the Idempotency-Key named another request's job (another body). */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            413: components["responses"]["PayloadTooLarge"];
            /** @description `unsupported_media_type`: the body is not sent as `application/json`. */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /**
             * @description A limit of the caller's plan; nothing was written (no job, no
             *     hold). `too_many_unfinished_jobs`: the plan's
             *     `max_unfinished_jobs` are queued or running (`Retry-After: 5`).
             *     `submit_rate_limited`: the submission token bucket
             *     (`submit_burst`, refilling at `submit_per_minute`) is empty;
             *     `Retry-After` is the seconds until one token. An idempotent
             *     replay is answered (202) whatever the limits. Also
             *     `too_many_requests` in place of a 401 (see above).
             */
            429: {
                headers: {
                    "Retry-After": number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            503: components["responses"]["Unavailable"];
        };
    };
    getJob: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The job. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Job"];
                };
            };
            401: components["responses"]["Unauthorized"];
            /** @description No such job for this caller (another user's job is 404 too). */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            429: components["responses"]["RefusalsExceeded"];
            503: components["responses"]["Unavailable"];
        };
    };
    cancelJob: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The job after the cancel. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Job"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["CrossSite"];
            /** @description No such job for this caller. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            429: components["responses"]["RefusalsExceeded"];
            503: components["responses"]["Unavailable"];
        };
    };
    streamJobEvents: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The event stream. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/event-stream": string;
                };
            };
            401: components["responses"]["Unauthorized"];
            /** @description No such job for this caller. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The caller already holds its maximum of open event streams (`too_many_streams`, `Retry-After`). */
            429: {
                headers: {
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            503: components["responses"]["Unavailable"];
        };
    };
    createUpload: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "image/png": string;
                "image/jpeg": string;
                "image/webp": string;
                "audio/mpeg": string;
                "audio/wav": string;
                "audio/mp4": string;
            };
        };
        responses: {
            /** @description Stored. */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Upload"];
                };
            };
            /** @description An empty body. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["CrossSite"];
            413: components["responses"]["PayloadTooLarge"];
            /** @description A Content-Type not accepted, or bytes that are not what it says. */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /**
             * @description `upload_limit_reached`: the upload would pass the plan's
             *     `uploads_per_day` or `upload_bytes_per_day` (UTC day); nothing is
             *     stored or recorded. `Retry-After` is the seconds until the next
             *     UTC day. Also `too_many_requests` in place of a 401.
             */
            429: {
                headers: {
                    "Retry-After": number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            503: components["responses"]["Unavailable"];
        };
    };
    getUploadContent: {
        parameters: {
            query: {
                /** @description unix seconds; the URL is valid up to and including this second */
                expires: string;
                sig: string;
            };
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The bytes, with the upload's `Content-Type`. */
            200: {
                headers: {
                    "Cache-Control"?: "private, max-age=300";
                    "X-Content-Type-Options"?: "nosniff";
                    [name: string]: unknown;
                };
                content: {
                    "image/*": string;
                    "audio/*": string;
                };
            };
            /** @description No such upload, or no valid signature for it (never says which). */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description In place of the 404 of a bad signature, when the caller's address has used up its refusals (`too_many_requests`). A valid signature is never refused so. */
            429: {
                headers: {
                    "Retry-After": number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            503: components["responses"]["Unavailable"];
        };
    };
    headUploadContent: {
        parameters: {
            query: {
                /** @description unix seconds; the URL is valid up to and including this second */
                expires: string;
                sig: string;
            };
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The upload's `Content-Type` and `Content-Length`, no body. */
            200: {
                headers: {
                    "Content-Length": number;
                    "Cache-Control"?: "private, max-age=300";
                    "X-Content-Type-Options"?: "nosniff";
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description As GET: no such upload, or no valid signature for it. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description As GET, without the body. */
            429: {
                headers: {
                    "Retry-After": number;
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description As GET: storage or the database is unavailable. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    lumaCallback: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                token: string;
            };
            cookie?: never;
        };
        /** @description Luma's Generation; ignored. */
        requestBody?: {
            content: {
                "application/json": Record<string, never>;
            };
        };
        responses: {
            /** @description Accepted as a wake-up of the job the token names. */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Not a callback token genq made (never says why). */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            413: components["responses"]["PayloadTooLarge"];
            /** @description In place of the 404 of a forged token, when the caller's address has used up its refusals (`too_many_requests`). A valid token is never refused so. */
            429: {
                headers: {
                    "Retry-After": number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Redis is unavailable (`Retry-After`); Luma tries again, the worker's fallback poll comes anyway. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    getAsset: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The bytes. */
            200: {
                headers: {
                    "Cache-Control"?: string;
                    "X-Content-Type-Options"?: "nosniff";
                    [name: string]: unknown;
                };
                content: {
                    "image/*": string;
                    "video/*": string;
                    "audio/*": string;
                };
            };
            401: components["responses"]["Unauthorized"];
            /** @description No such asset for this caller, or its bytes are gone. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            429: components["responses"]["RefusalsExceeded"];
            503: components["responses"]["Unavailable"];
        };
    };
    getCredits: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Balance, held, available, and the debt a refund left. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        balance: number;
                        held: number;
                        available: number;
                        /**
                         * @description Credits a Stripe refund took back after they were spent.
                         *     While above 0, POST /v1/jobs answers 402 `credit_debt`;
                         *     the next grant or purchase pays it first.
                         */
                        debt: number;
                    };
                };
            };
            401: components["responses"]["Unauthorized"];
            429: components["responses"]["RefusalsExceeded"];
            503: components["responses"]["Unavailable"];
        };
    };
    listLedger: {
        parameters: {
            query?: {
                limit?: number;
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description One page of ledger rows. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        next_cursor: string | null;
                        data: components["schemas"]["LedgerRow"][];
                    };
                };
            };
            /** @description `invalid_request`: a bad `limit` or `cursor`; the message names it. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            401: components["responses"]["Unauthorized"];
            429: components["responses"]["RefusalsExceeded"];
            503: components["responses"]["Unavailable"];
        };
    };
    deleteMe: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Deleted; the data is purged at `purge_after`. */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        /**
                         * Format: date-time
                         * @description the first deletion's time, also on a repeat
                         */
                        deleted_at: string;
                        /**
                         * Format: date-time
                         * @description deleted_at + 30 days
                         */
                        purge_after: string;
                        /** @description the jobs this call canceled */
                        canceled: string[];
                        /** @description the API keys this call revoked */
                        keys_revoked: number;
                    };
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["CrossSite"];
            429: components["responses"]["RefusalsExceeded"];
            503: components["responses"]["Unavailable"];
        };
    };
    exportMe: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The export. */
            200: {
                headers: {
                    "Content-Disposition": "attachment; filename=\"genq-export.json\"";
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        account: {
                            user_id: string;
                            /** Format: date-time */
                            created_at: string;
                            plan: string;
                            balance: number;
                            held: number;
                            available: number;
                            debt: number;
                            /** Format: date-time */
                            deleted_at?: string | null;
                            /** Format: date-time */
                            purge_after?: string | null;
                            /** Format: date-time */
                            exported_at: string;
                        };
                        /** @description every job, oldest first */
                        jobs: components["schemas"]["Job"][];
                        /** @description every ledger row, oldest first, as GET /v1/credits/ledger shows them */
                        ledger: components["schemas"]["LedgerRow"][];
                        uploads: {
                            /** Format: uuid */
                            id: string;
                            content_type: string;
                            bytes: number;
                            sha256: string;
                            /** Format: date-time */
                            created_at: string;
                            /** Format: date-time */
                            expires_at: string;
                            /**
                             * Format: date-time
                             * @description its bytes were deleted then
                             */
                            deleted_at: string | null;
                            jobs: string[];
                        }[];
                        assets: (components["schemas"]["Asset"] & {
                            /** Format: uuid */
                            job_id?: string;
                            /** Format: date-time */
                            created_at?: string;
                        })[];
                        webhook_deliveries: {
                            /** @description the webhook-id, msg_... */
                            id?: string;
                            /** Format: uuid */
                            job_id?: string;
                            event?: string;
                            url?: string;
                            /** @enum {unknown} */
                            state?: "pending" | "delivering" | "delivered" | "failed" | "refused";
                            attempts?: number;
                            /** Format: date-time */
                            created_at?: string;
                            /** Format: date-time */
                            last_attempt_at?: string | null;
                            last_status?: number | null;
                            /** Format: date-time */
                            delivered_at?: string | null;
                        }[];
                        /** @description never the key or its hash */
                        api_keys: {
                            /** Format: uuid */
                            id?: string;
                            name?: string;
                            prefix?: string;
                            admin?: boolean;
                            /** Format: date-time */
                            created_at?: string;
                            /** Format: date-time */
                            last_used_at?: string | null;
                            /** Format: date-time */
                            revoked_at?: string | null;
                        }[];
                    };
                };
            };
            401: components["responses"]["Unauthorized"];
            429: components["responses"]["RefusalsExceeded"];
            503: components["responses"]["Unavailable"];
        };
    };
    getUsage: {
        parameters: {
            query?: {
                /** @description YYYY-MM-DD (default: to − 29 days) */
                from?: string;
                /** @description YYYY-MM-DD (default: today, UTC) */
                to?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The usage of the range. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Usage"];
                };
            };
            /** @description `invalid_request`: a bad date, `from` after `to`, or more than 366 days; the message names the field. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            401: components["responses"]["Unauthorized"];
            429: components["responses"]["RefusalsExceeded"];
            503: components["responses"]["Unavailable"];
        };
    };
    stripeWebhook: {
        parameters: {
            query?: never;
            header: {
                "Stripe-Signature": string;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    id: string;
                    type: string;
                    created?: number;
                    data: {
                        object: Record<string, never>;
                    };
                };
            };
        };
        responses: {
            /** @description Applied, or ignored (outcome says which). */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        /** @constant */
                        received: true;
                        /**
                         * @example granted
                         * @example already_granted
                         * @example awaiting_payment
                         * @example failed
                         * @example reversed
                         * @example already_reversed
                         * @example refund_waiting
                         * @example waiting_for_user
                         * @example subscription_linked
                         * @example subscription_updated
                         * @example subscription_ended
                         * @example stale
                         * @example ended
                         * @example ignored
                         */
                        outcome: string;
                    };
                };
            };
            /**
             * @description `invalid_signature` (no header, malformed, or no v1 matches),
             *     `signature_expired` (t more than 300 s from now), `invalid_json`,
             *     or `invalid_event` (a field the event type needs is missing or
             *     wrong; the message names it, e.g. `data.object.metadata.credits`).
             *     Nothing changed.
             */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            413: components["responses"]["PayloadTooLarge"];
            /** @description `stripe_disabled` (no STRIPE_WEBHOOK_SECRET), or the database is unavailable: Stripe delivers again. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    adminStats: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The queues now. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AdminStats"];
                };
            };
            401: components["responses"]["Error"];
            404: components["responses"]["AdminNotFound"];
            503: components["responses"]["Error"];
        };
    };
    adminWorkers: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Every live worker's record. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AdminWorkers"];
                };
            };
            401: components["responses"]["Error"];
            404: components["responses"]["AdminNotFound"];
            503: components["responses"]["Error"];
        };
    };
    adminWorkerQuiet: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description a worker's id, host:pid:random (percent-encoded) */
                id: components["parameters"]["WorkerId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            202: components["responses"]["AdminWorkerCommand"];
            401: components["responses"]["Error"];
            404: components["responses"]["AdminNotFound"];
            503: components["responses"]["Error"];
        };
    };
    adminWorkerStop: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description a worker's id, host:pid:random (percent-encoded) */
                id: components["parameters"]["WorkerId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            202: components["responses"]["AdminWorkerCommand"];
            401: components["responses"]["Error"];
            404: components["responses"]["AdminNotFound"];
            503: components["responses"]["Error"];
        };
    };
    adminProviders: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Each provider's fleet-wide limits now. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AdminProviders"];
                };
            };
            401: components["responses"]["Error"];
            404: components["responses"]["AdminNotFound"];
            503: components["responses"]["Error"];
        };
    };
    adminJobsList: {
        parameters: {
            query?: {
                status?: "failed" | "dead" | "canceled" | "queued" | "running";
                kind?: components["schemas"]["Kind"];
                user?: string;
                /** @description an RFC 3339 date-time, or a duration before now: 90s, 10m, 2h, 1d, 1w */
                since?: components["parameters"]["Since"];
                limit?: number;
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of jobs. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AdminJobPage"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            404: components["responses"]["AdminNotFound"];
            503: components["responses"]["Error"];
        };
    };
    adminJobsRetry: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["AdminRetryFilter"];
            };
        };
        responses: {
            /** @description What was (or, in a dry run, would be) retried. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AdminRetryResult"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            404: components["responses"]["AdminNotFound"];
            415: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    adminJobRetry: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: components["parameters"]["JobId"];
            };
            cookie?: never;
        };
        requestBody?: {
            content: {
                "application/json": {
                    /** @description default: the job's own */
                    max_attempts?: number;
                };
            };
        };
        responses: {
            200: components["responses"]["AdminJob"];
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            /** @description `insufficient_credits`: the user cannot pay the hold again; nothing changed. */
            402: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            404: components["responses"]["AdminNotFound"];
            /** @description `not_failed` (the job did not fail) or `inputs_gone` (an upload it needs, or the account, was deleted); nothing changed. */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            503: components["responses"]["Error"];
        };
    };
    adminJobCancel: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: components["parameters"]["JobId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: components["responses"]["AdminJob"];
            401: components["responses"]["Error"];
            404: components["responses"]["AdminNotFound"];
            503: components["responses"]["Error"];
        };
    };
    adminCreditsGrant: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the grant once; the same request again is answered with Idempotent-Replayed. */
                "Idempotency-Key"?: string;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["AdminGrantRequest"];
            };
        };
        responses: {
            /** @description Granted, or a replay of the grant made with this key (then `Idempotent-Replayed: true`). */
            200: {
                headers: {
                    /** @description `true` on a replay. */
                    "Idempotent-Replayed"?: "true";
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AdminGrant"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            404: components["responses"]["AdminNotFound"];
            /** @description `idempotency_conflict`: the key was used for another user or amount; nothing changed. */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            415: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    adminActions: {
        parameters: {
            query?: {
                action?: components["schemas"]["AdminActionName"];
                /** @description a job id, a user id (grants), a worker id */
                target?: string;
                /** @description the actor's id: a user id, an API key id, <os user>@<host> */
                actor?: string;
                limit?: number;
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of the audit. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AdminActionPage"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            404: components["responses"]["AdminNotFound"];
            503: components["responses"]["Error"];
        };
    };
    adminEvents: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The stream. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/event-stream": string;
                };
            };
            401: components["responses"]["Error"];
            404: components["responses"]["AdminNotFound"];
            429: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    adminDashboard: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The page. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            404: components["responses"]["Error"];
        };
    };
    headAdminDashboard: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description What GET answers, without the body. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description As GET. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    getAdminFile: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description one of the page's files: admin.js, admin.css, favicon.svg, index.html */
                file: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The file, under the same Content-Security-Policy as the page. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                    "text/css": string;
                    "text/javascript": string;
                    "image/svg+xml": string;
                };
            };
            404: components["responses"]["Error"];
        };
    };
    headAdminFile: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description one of the page's files: admin.js, admin.css, favicon.svg, index.html */
                file: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description What GET answers, without the body. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description As GET. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
}
