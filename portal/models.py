"""Every domain's models, imported together so that the metadata (and Alembic) sees them all."""

from portal.auth.models import Throttle, User
from portal.care.models import CareHousehold, HelpTask, HelpVisit, TaskCommitment
from portal.certificates.models import Certificate
from portal.core.stamps import CacheStamp
from portal.help.models import ApiKey, Category, HelpRequest, RequestEvent, RequestPhoto
from portal.notifications.models import Notification
from portal.patrols.models import DoorVisit, Hazard, PatrolReport, Shift, ShiftSeries, Signup
from portal.people.models import Person
from portal.places.models import Building, Community, Entrance, Estate, Grid, Household, Subdistrict
from portal.points.models import PointsAccount, PointsEntry, PointsRule, PointsTally
from portal.rewards.models import Redemption, Reward
from portal.trust.models import AuditEntry, Consent, IdempotencyKey
from portal.volunteers.models import Volunteer, VolunteerType

__all__ = [
    "CacheStamp",
    "CareHousehold",
    "HelpTask",
    "HelpVisit",
    "TaskCommitment",
    "AuditEntry",
    "Consent",
    "IdempotencyKey",
    "Certificate",
    "PointsAccount",
    "PointsEntry",
    "PointsRule",
    "PointsTally",
    "Redemption",
    "Reward",
    "ApiKey",
    "Category",
    "HelpRequest",
    "RequestEvent",
    "RequestPhoto",
    "Building",
    "Community",
    "DoorVisit",
    "Entrance",
    "Estate",
    "Grid",
    "Hazard",
    "Household",
    "Throttle",
    "Notification",
    "PatrolReport",
    "Person",
    "Shift",
    "ShiftSeries",
    "Signup",
    "Subdistrict",
    "User",
    "Volunteer",
    "VolunteerType",
]
