"""Tracking as the shop API shows it (participants with their codes and links, referrals), and the customer input
shared by the referral and conversion APIs. Also the `data` of the participant.created and referral.created
webhooks."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from programs.fields import CustomerEmailField
from referral_saas.fields import KeyField, MoneyOutputField
from referral_saas.serializers import FastSerializer
from tracking.models import ReferralCode
from tracking.selectors import link_for


class CustomerInput(FastSerializer):
    external_id = KeyField(required=False, allow_null=True, allow_blank=True)
    email = CustomerEmailField(required=False, allow_null=True, allow_blank=True)


class CodeOutput(serializers.Serializer):
    program = serializers.CharField(source="program.slug")
    code = serializers.CharField()
    link = serializers.SerializerMethodField()
    status = serializers.CharField()
    variant = serializers.CharField(source="variant.name", allow_null=True, default=None)

    def get_link(self, code) -> str:
        return link_for(code.code)


class ParticipantOutput(serializers.Serializer):
    id = serializers.IntegerField()
    program = serializers.SerializerMethodField()
    external_id = serializers.CharField(allow_null=True)
    email = serializers.EmailField(allow_null=True)
    name = serializers.CharField()
    language = serializers.CharField()
    status = serializers.CharField()
    marketing_consent = serializers.BooleanField()
    code = serializers.SerializerMethodField()
    link = serializers.SerializerMethodField()
    codes = serializers.SerializerMethodField()
    referred_by = serializers.IntegerField(source="referred_by_id", allow_null=True)
    created_at = serializers.DateTimeField()

    def _main_code(self, participant) -> ReferralCode | None:
        wanted = self.context.get("program_slug")
        codes = self._codes(participant)
        for code in codes:
            if wanted is None or code.program.slug == wanted:
                return code
        return None

    def _codes(self, participant) -> list[ReferralCode]:
        return sorted(participant.codes.all(), key=lambda c: c.created_at)

    def get_program(self, participant) -> str | None:
        code = self._main_code(participant)
        return code.program.slug if code else None

    def get_code(self, participant) -> str | None:
        code = self._main_code(participant)
        return code.code if code else None

    def get_link(self, participant) -> str | None:
        code = self._main_code(participant)
        return link_for(code.code) if code else None

    @extend_schema_field(CodeOutput(many=True))
    def get_codes(self, participant) -> list[dict]:
        return CodeOutput(self._codes(participant), many=True).data


class ReferralOutput(serializers.Serializer):
    @extend_schema_serializer(component_name="ReferralReferrer")
    class Referrer(serializers.Serializer):
        id = serializers.IntegerField()
        external_id = serializers.CharField(allow_null=True)

    id = serializers.IntegerField()
    program = serializers.CharField(source="program.slug")
    status = serializers.CharField()
    rejection_reason = serializers.CharField(allow_blank=True)
    code = serializers.CharField(source="code.code")
    referrer = Referrer()
    customer = serializers.SerializerMethodField()
    variant = serializers.CharField(source="variant.name", allow_null=True, default=None)
    touched_at = serializers.DateTimeField()
    signed_up_at = serializers.DateTimeField(allow_null=True)
    converted_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_customer(self, referral) -> dict:
        return {"external_id": referral.referee_external_id, "email": referral.referee_email}


class RefundOutput(serializers.Serializer):
    id = serializers.IntegerField()
    order_id = serializers.CharField(source="conversion.order_id")
    refund_id = serializers.CharField()
    amount = MoneyOutputField()
    currency = serializers.CharField()
    order_refunded_amount = MoneyOutputField(source="conversion.refunded_amount")
    created_at = serializers.DateTimeField()
