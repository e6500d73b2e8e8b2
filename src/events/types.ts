import type { Micros } from './money.ts';

/** One offer (ad) listed by an emission, with the price of a click on it. */
export interface Offer {
  /** Advertiser's offer id. */
  offerId: string;
  /** What one billable click on this offer in this emission costs, in micros. */
  clickCost: Micros;
}

/** A set of offers returned for display on a placement. */
export interface Emission {
  type: 'emission';
  /** Producer-assigned id, unique per event; a redelivery carries the same id. */
  id: string;
  /** Event time, UTC epoch ms. */
  ts: number;
  /** Where the offers were shown, e.g. "home-top". */
  placement: string;
  /** Data center that produced the event, when known. */
  dc?: string;
  /** The offers listed, each offerId at most once. */
  offers: Offer[];
}

/** A user clicking one offer of one emission. */
export interface Click {
  type: 'click';
  /** Producer-assigned id, unique per event; a redelivery carries the same id. */
  id: string;
  /** Event time, UTC epoch ms. */
  ts: number;
  /** The emission the clicked offer was shown in. */
  emissionId: string;
  /** The clicked offer. */
  offerId: string;
  /** Who clicked. */
  userId: string;
  /** Client address, IPv4 or IPv6. */
  ip: string;
  /** Data center that produced the event, when known. */
  dc?: string;
}

/** Any event reckon accepts. */
export type ReckonEvent = Emission | Click;

/** The kinds of event, which are also the names of their log topics. */
export const EVENT_TYPES = ['emission', 'click'] as const;

/** One of {@link EVENT_TYPES}. */
export type EventType = (typeof EVENT_TYPES)[number];
