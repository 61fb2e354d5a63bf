"""Every management API route, in one file (STYLE.md rule 5)."""

from django.urls import path

from campaigns import api as campaigns_api
from cdp import schema  # noqa: F401  (registers the API key scheme for OpenAPI)
from consent import api as consent_api
from experiences import api as experiences_api
from identity import api as identity_api
from profiles import api as profiles_api
from recommendations import api as recommendations_api
from segments import api as segments_api

urlpatterns: list = [
    path("placements/", experiences_api.PlacementListApi.as_view(), name="api-placement-list"),
    path(
        "placements/<int:placement_id>/",
        experiences_api.PlacementDetailApi.as_view(),
        name="api-placement-detail",
    ),
    path("experiences/", experiences_api.ExperienceListApi.as_view(), name="api-experience-list"),
    path(
        "experiences/<int:experience_id>/",
        experiences_api.ExperienceDetailApi.as_view(),
        name="api-experience-detail",
    ),
    path(
        "experiences/<int:experience_id>/results/",
        experiences_api.ExperienceResultsApi.as_view(),
        name="api-experience-results",
    ),
    path("profiles/", profiles_api.ProfileListApi.as_view(), name="api-profile-list"),
    path(
        "profiles/<int:profile_id>/",
        profiles_api.ProfileDetailApi.as_view(),
        name="api-profile-detail",
    ),
    path(
        "profiles/<int:profile_id>/events/",
        profiles_api.ProfileEventsApi.as_view(),
        name="api-profile-events",
    ),
    path("segments/", segments_api.SegmentListApi.as_view(), name="api-segment-list"),
    path("segments/preview/", segments_api.SegmentPreviewApi.as_view(), name="api-segment-preview"),
    path("segments/schema/", segments_api.SegmentSchemaApi.as_view(), name="api-segment-schema"),
    path(
        "segments/<int:segment_id>/",
        segments_api.SegmentDetailApi.as_view(),
        name="api-segment-detail",
    ),
    path(
        "segments/<int:segment_id>/archive/",
        segments_api.SegmentArchiveApi.as_view(),
        name="api-segment-archive",
    ),
    path(
        "segments/<int:segment_id>/webhook-secret/",
        segments_api.SegmentWebhookSecretApi.as_view(),
        name="api-segment-webhook-secret",
    ),
    path(
        "segments/<int:segment_id>/refresh/",
        segments_api.SegmentRefreshApi.as_view(),
        name="api-segment-refresh",
    ),
    path(
        "segments/<int:segment_id>/members/",
        segments_api.SegmentMembersApi.as_view(),
        name="api-segment-members",
    ),
    path(
        "segments/<int:segment_id>/export.csv",
        segments_api.SegmentExportApi.as_view(),
        name="api-segment-export",
    ),
    path(
        "segments/<int:segment_id>/explain/<int:profile_id>/",
        segments_api.SegmentExplainApi.as_view(),
        name="api-segment-explain",
    ),
    path(
        "profiles/<int:profile_id>/segments/",
        segments_api.ProfileSegmentsApi.as_view(),
        name="api-profile-segments",
    ),
    path(
        "identity/suggestions/",
        identity_api.SuggestionListApi.as_view(),
        name="api-identity-suggestions",
    ),
    path(
        "identity/suggestions/decide/",
        identity_api.SuggestionDecideApi.as_view(),
        name="api-identity-decide",
    ),
    path("identity/merge/", identity_api.MergeApi.as_view(), name="api-identity-merge"),
    path("identity/merges/", identity_api.MergeHistoryApi.as_view(), name="api-identity-merges"),
    path(
        "identity/merges/<int:merge_id>/unmerge/",
        identity_api.UnmergeApi.as_view(),
        name="api-identity-unmerge",
    ),
    path("identity/lookup/", identity_api.IdentityLookupApi.as_view(), name="api-identity-lookup"),
    path("identity/settings/", identity_api.SettingsApi.as_view(), name="api-identity-settings"),
    path("identity/rescans/", identity_api.RescanApi.as_view(), name="api-identity-rescans"),
    path(
        "identity/rescans/<int:job_id>/",
        identity_api.RescanDetailApi.as_view(),
        name="api-identity-rescan",
    ),
]

# Consent and privacy (consent/).
urlpatterns += [
    path("consents/", consent_api.ConsentCreateApi.as_view(), name="api-consents"),
    path("consent-purposes/", consent_api.PurposeListApi.as_view(), name="api-consent-purposes"),
    path(
        "profiles/<int:profile_id>/consents/",
        consent_api.ProfileConsentsApi.as_view(),
        name="api-profile-consents",
    ),
    path(
        "privacy-requests/",
        consent_api.PrivacyRequestListCreateApi.as_view(),
        name="api-privacy-requests",
    ),
    path(
        "privacy-requests/<int:request_id>/",
        consent_api.PrivacyRequestDetailApi.as_view(),
        name="api-privacy-request",
    ),
    path(
        "privacy-requests/<int:request_id>/export/",
        consent_api.PrivacyRequestExportApi.as_view(),
        name="api-privacy-request-export",
    ),
    path("audit/", consent_api.AuditLogListApi.as_view(), name="api-audit"),
]

# Campaigns and channels (campaigns/).
urlpatterns += [
    path("campaigns/", campaigns_api.CampaignListApi.as_view(), name="api-campaigns"),
    path(
        "campaigns/holdout/",
        campaigns_api.CampaignHoldoutApi.as_view(),
        name="api-campaign-holdout",
    ),
    path(
        "campaigns/schema/", campaigns_api.CampaignSchemaApi.as_view(), name="api-campaign-schema"
    ),
    path(
        "campaigns/<int:campaign_id>/",
        campaigns_api.CampaignDetailApi.as_view(),
        name="api-campaign-detail",
    ),
    path(
        "campaigns/<int:campaign_id>/activate/",
        campaigns_api.CampaignActivateApi.as_view(),
        name="api-campaign-activate",
    ),
    path(
        "campaigns/<int:campaign_id>/pause/",
        campaigns_api.CampaignPauseApi.as_view(),
        name="api-campaign-pause",
    ),
    path(
        "campaigns/<int:campaign_id>/results/",
        campaigns_api.CampaignResultsApi.as_view(),
        name="api-campaign-results",
    ),
    path(
        "campaigns/<int:campaign_id>/deliveries/",
        campaigns_api.CampaignDeliveriesApi.as_view(),
        name="api-campaign-deliveries",
    ),
    path(
        "profiles/<int:profile_id>/deliveries/",
        campaigns_api.ProfileDeliveriesApi.as_view(),
        name="api-profile-deliveries",
    ),
    path(
        "deliveries/failed/",
        campaigns_api.DeadLetterListApi.as_view(),
        name="api-deliveries-failed",
    ),
    path(
        "deliveries/replay/",
        campaigns_api.DeadLetterReplayApi.as_view(),
        name="api-deliveries-replay",
    ),
    path("channels/", campaigns_api.ChannelListApi.as_view(), name="api-channels"),
    path(
        "push-subscriptions/",
        campaigns_api.PushSubscriptionApi.as_view(),
        name="api-push-subscriptions",
    ),
    path(
        "channels/<int:channel_id>/",
        campaigns_api.ChannelDetailApi.as_view(),
        name="api-channel-detail",
    ),
    path(
        "channels/<int:channel_id>/feedback/",
        campaigns_api.ChannelFeedbackApi.as_view(),
        name="api-channel-feedback",
    ),
    path(
        "channels/<int:channel_id>/rotate-secret/",
        campaigns_api.ChannelSecretRotateApi.as_view(),
        name="api-channel-rotate-secret",
    ),
]

# Recommendations: the catalog, its imports, the lists (recommendations/).
urlpatterns += [
    path("items/", recommendations_api.ItemListApi.as_view(), name="api-item-list"),
    path(
        "items/<str:item_id>/",
        recommendations_api.ItemDetailApi.as_view(),
        name="api-item-detail",
    ),
    path(
        "items/<str:item_id>/similar/",
        recommendations_api.ItemSimilarApi.as_view(),
        name="api-item-similar",
    ),
    path(
        "profiles/<int:profile_id>/recommendations/",
        recommendations_api.ProfileRecommendationsApi.as_view(),
        name="api-profile-recommendations",
    ),
    path(
        "recommendations/",
        recommendations_api.IdentifierRecommendationsApi.as_view(),
        name="api-recommendations",
    ),
    path(
        "recommenders/runs/",
        recommendations_api.ModelRunListApi.as_view(),
        name="api-recommender-runs",
    ),
    path(
        "recommenders/runs/<int:run_id>/",
        recommendations_api.ModelRunDetailApi.as_view(),
        name="api-recommender-run",
    ),
    path(
        "recommenders/runs/<int:run_id>/rollback/",
        recommendations_api.ModelRunRollbackApi.as_view(),
        name="api-recommender-rollback",
    ),
    path(
        "recommendation-rules/",
        recommendations_api.RulesApi.as_view(),
        name="api-recommendation-rules",
    ),
    path(
        "item-imports/",
        recommendations_api.ItemImportCreateApi.as_view(),
        name="api-item-imports",
    ),
    path(
        "item-imports/<int:job_id>/",
        recommendations_api.ItemImportDetailApi.as_view(),
        name="api-item-import",
    ),
]
