"""Typed properties of the canonical event types (GA4's e-commerce vocabulary).

Each model lists the properties Parcours relies on, with `*` required ones as fields without a
default. Models are strict (a string "3" is not a number, a bool is not an integer) and allow
extra properties: tracking plans add their own, and Parcours keeps them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

DeviceType = Literal["desktop", "mobile", "tablet", "kiosk", "pos"]
NonNegative = Field(ge=0)
#: Largest money amount (`value`, `price`) accepted: a trillion in any currency. Larger ones are
#: mistakes or attacks, and summing a few near the float limit makes a session's revenue `inf`.
MAX_AMOUNT = 1e12
#: Largest quantity and largest absolute survey score accepted, for the same reason.
MAX_QUANTITY = 1_000_000


class Properties(BaseModel):
    """Properties any event may carry."""

    model_config = ConfigDict(strict=True, extra="allow")

    device_type: DeviceType | None = None


class PageView(Properties):
    page: str = Field(min_length=1)
    referrer: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None


class ScreenView(Properties):
    screen: str = Field(min_length=1)


class ViewItemList(Properties):
    item_list_id: str | None = None


class ViewItem(Properties):
    item_id: str = Field(min_length=1)


class Search(Properties):
    search_term: str
    results_count: int = Field(ge=0)


class AddToWishlist(Properties):
    item_id: str | None = None


class CartChange(Properties):
    item_id: str = Field(min_length=1)
    quantity: int | None = Field(default=None, ge=1, le=MAX_QUANTITY)
    price: float | None = Field(default=None, ge=0, le=MAX_AMOUNT, allow_inf_nan=False)


class BeginCheckout(Properties):
    value: float | None = Field(default=None, ge=0, le=MAX_AMOUNT, allow_inf_nan=False)


class Purchase(Properties):
    transaction_id: str = Field(min_length=1)
    value: float = Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class Refund(Properties):
    transaction_id: str | None = None
    value: float | None = Field(default=None, ge=0, le=MAX_AMOUNT, allow_inf_nan=False)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")


class Click(Properties):
    element: str = Field(min_length=1)


class ExceptionRaised(Properties):
    description: str
    fatal: bool | None = None


class PaymentError(Properties):
    reason: str | None = None


class SupportContact(Properties):
    medium: Literal["chat", "phone", "email", "in_store"]
    topic: str | None = None


class StoreVisit(Properties):
    store_id: str = Field(min_length=1)


#: The scales of the survey kinds (`parcours touchpoints` computes NPS, CSAT and CES from them).
SURVEY_SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}


class SurveyResponse(Properties):
    kind: Literal["nps", "csat", "ces"]
    score: float = Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY, allow_inf_nan=False)
    touchpoint: str | None = None

    @field_validator("score")
    @classmethod
    def _on_the_scale(cls, score: float, info: ValidationInfo) -> float:
        """A score off its kind's scale (an NPS of 11, a CSAT of 0) is a rejection: averaged in,
        it would shift every satisfaction figure without anyone noticing."""
        low, high = SURVEY_SCALES.get(info.data.get("kind", ""), (-MAX_QUANTITY, MAX_QUANTITY))
        if not low <= score <= high:
            raise ValueError(f"{info.data['kind']} scores run from {low} to {high}, got {score:g}")
        return score


#: Canonical event type -> the model of its properties.
CANONICAL: dict[str, type[Properties]] = {
    "page_view": PageView,
    "screen_view": ScreenView,
    "view_item_list": ViewItemList,
    "view_item": ViewItem,
    "search": Search,
    "add_to_wishlist": AddToWishlist,
    "add_to_cart": CartChange,
    "remove_from_cart": CartChange,
    "view_cart": Properties,
    "begin_checkout": BeginCheckout,
    "add_shipping_info": Properties,
    "add_payment_info": Properties,
    "purchase": Purchase,
    "refund": Refund,
    "login": Properties,
    "sign_up": Properties,
    "click": Click,
    "exception": ExceptionRaised,
    "payment_error": PaymentError,
    "support_contact": SupportContact,
    "store_visit": StoreVisit,
    "survey_response": SurveyResponse,
}

#: Types whose envelope must name both the device and the customer (they create the link).
IDENTIFYING_TYPES = frozenset({"login", "sign_up"})
