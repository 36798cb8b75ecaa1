// Code written against the TypeScript types openapi-typescript generates from the served
// /api/public/openapi.json, type-checked by scripts/openapi-clients (`tsc --noEmit`): the README
// walk-through's request and response shapes (listClicks, createPartner, createConversion, the
// error body) must keep compiling, and the `@ts-expect-error` lines must keep failing, so a
// document that loses a field, loosens a type to `unknown`/`any` or renames an operation breaks it.
import type { components, operations } from "trcker-public-api";

type Schemas = components["schemas"];

// The JSON body of one documented response, and of an operation's request.
type ResponseJson<
  Op extends keyof operations,
  Status extends keyof operations[Op]["responses"],
> = operations[Op]["responses"][Status] extends { content: { "application/json": infer Body } }
  ? Body
  : never;
type RequestJson<Op extends keyof operations> = operations[Op] extends {
  requestBody: { content: { "application/json": infer Body } };
}
  ? Body
  : never;

// Compile-time equality (distinguishes `any` from everything else), asserted by `expectType`.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<_ extends true>(): void {}

// --- listClicks: GET /api/public/clicks -------------------------------------------------------
export type ListClicksQuery = NonNullable<operations["listClicks"]["parameters"]["query"]>;
export type ClickPage = ResponseJson<"listClicks", 200>;
export type Click = Schemas["Click"];

expectType<Equal<ClickPage["data"], Click[]>>();
expectType<Equal<ClickPage["next_cursor"], string | null | undefined>>();
expectType<Equal<Click["fraud_score"], number>>();
expectType<Equal<Click["flagged"], boolean>>();
// Attribution may be missing on a click: the type must say so.
expectType<Equal<Click["partner_id"], string | null | undefined>>();

export const firstPage: ListClicksQuery = { limit: 3 };
export const filtered: ListClicksQuery = {
  limit: 100,
  partner_id: "ptr_0123456789abcdef",
  offer_id: "off_0123456789abcdef",
  from: "2026-01-01T00:00:00Z",
  to: "1767225600000",
};
// @ts-expect-error limit is a number, not a string
export const badLimit: ListClicksQuery = { limit: "3" };
// @ts-expect-error there is no such filter
export const unknownFilter: ListClicksQuery = { status: "flagged" };

// The next page's query from this one, as the README describes paging.
export function nextPage(page: ClickPage, query: ListClicksQuery): ListClicksQuery | null {
  return page.next_cursor ? { ...query, cursor: page.next_cursor } : null;
}

export function clickLine(click: Click): string {
  const who = click.partner_id ?? "unattributed";
  return `${click.click_id} at ${click.at} by ${who}: score ${click.fraud_score.toFixed(0)}${click.flagged ? " (flagged)" : ""}`;
}

// --- createPartner: POST /api/public/partners --------------------------------------------------
export type CreatePartnerBody = RequestJson<"createPartner">;
export type Partner = ResponseJson<"createPartner", 201>;

expectType<Equal<CreatePartnerBody, Schemas["CreatePartner"]>>();
expectType<Equal<Partner, Schemas["Partner"]>>();
expectType<Equal<Partner["status"], "active" | "paused" | "pending">>();

export const carol: CreatePartnerBody = {
  name: "Carol Reviews",
  email: "carol@reviews.example",
  slug: "carol-reviews",
};
export const pausedCarol: CreatePartnerBody = { ...carol, status: "paused", postback_url_template: null };
// @ts-expect-error email is required
export const noEmail: CreatePartnerBody = { name: "Carol Reviews", slug: "carol-reviews" };
// @ts-expect-error "deleted" is not a partner status
export const badStatus: CreatePartnerBody = { ...carol, status: "deleted" };
// @ts-expect-error the body takes no id: the server assigns it
export const withId: CreatePartnerBody = { id: "ptr_x", name: "C", email: "c@example.com", slug: "c" };

export function partnerLabel(partner: Partner): string {
  return `${partner.name} <${partner.email}> (${partner.slug}, ${partner.status}) since ${partner.created_at}`;
}

// --- createConversion: POST /api/public/conversions ----------------------------------------------
export type CreateConversionBody = RequestJson<"createConversion">;
// 201 the first time, 200 with duplicate = true for a repeated txn_id: one shape for both.
export type Recorded = ResponseJson<"createConversion", 201>;

expectType<Equal<ResponseJson<"createConversion", 200>, Recorded>>();
expectType<Equal<Recorded["duplicate"], boolean>>();
expectType<Equal<Recorded["payout"], Schemas["ConversionPayout"]>>();
expectType<Equal<Recorded["status"], Schemas["ConversionStatus"]>>();

export const sale: CreateConversionBody = { click_id: "demo-click-000", amount: 120, txn_id: "order-1001" };
export const signup: CreateConversionBody = { click_id: "demo-click-001", event: "signup", amount: null };
// @ts-expect-error click_id is required: a conversion is attributed through its click
export const noClick: CreateConversionBody = { amount: 120 };
// @ts-expect-error amount is a number
export const textAmount: CreateConversionBody = { click_id: "demo-click-000", amount: "120" };

// Where the payout came from: exhaustive over the documented sources, so a new one fails here.
export function payoutSource(source: Schemas["PayoutSource"]): string {
  switch (source) {
    case "partner_rule":
      return "the partner's pricing rule";
    case "offer_rule":
      return "the offer's pricing rule";
    case "offer_default":
      return "the offer's default payout";
    default: {
      const unknown: never = source;
      return unknown;
    }
  }
}

export function receipt(recorded: Recorded): string {
  const { amount, currency, source } = recorded.payout;
  const again = recorded.duplicate ? " (already recorded)" : "";
  // txn_id and partner_id may be null: the fallbacks are needed for this to compile.
  return `${recorded.txn_id ?? recorded.id}: ${amount.toFixed(2)} ${currency} from ${payoutSource(source)} to ${recorded.partner_id ?? "nobody"}${again}`;
}

export function txnOf(recorded: Recorded): string {
  // @ts-expect-error txn_id may be null or missing: not a string without a check
  const txn: string = recorded.txn_id;
  return txn;
}

// --- the error body: every documented error status of these operations -------------------------
export type ErrorBody = Schemas["ErrorResponse"];

expectType<Equal<ResponseJson<"getPartner", 404>, ErrorBody>>();
expectType<Equal<ResponseJson<"createPartner", 400>, ErrorBody>>();
expectType<Equal<ResponseJson<"createConversion", 422>, ErrorBody>>();
expectType<Equal<ResponseJson<"listClicks", 429>, ErrorBody>>();
expectType<Equal<ResponseJson<"listClicks", 401>, ErrorBody>>();
expectType<Equal<ErrorBody["error"]["code"], string>>();
// @ts-expect-error listClicks documents no 422: it has no body to be unprocessable
export type NoSuchStatus = ResponseJson<"listClicks", 422>;

export function errorLine(status: number, body: ErrorBody): string {
  return `${status} ${body.error.code}: ${body.error.message}`;
}

// --- the rest of the walk-through: createOffer, listActivity, getWhoami ---------------------------
export const winterSale: RequestJson<"createOffer"> = {
  name: "Winter Sale",
  slug: "winter-sale",
  destination_url: "https://shop.example/winter",
  default_payout: { type: "percent", amount: 15 },
};
export const apiActivity: NonNullable<operations["listActivity"]["parameters"]["query"]> = {
  source: "api",
  limit: 5,
};

export function deliveryLine(entry: ResponseJson<"listActivity", 200>["data"][number]): string {
  return `${entry.at} ${entry.method} ${entry.target} ${entry.status} ${entry.fingerprint} ${entry.source_ip} ${entry.user_agent}`;
}

export function whoamiLine(me: ResponseJson<"getWhoami", 200>): string {
  return `${me.brand_id} ${me.key_id} ${me.fingerprint}`;
}
