"""The member API's permission: signed in and a member of the programme (request.member)."""

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import SAFE_METHODS, BasePermission

from referrals.selectors import member_for_user


class IsMember(BasePermission):
    """Signed in (token or session) and an active member of the programme; puts the member on `request.member`.

    A suspended member gets a 403 with code "suspended", except that `IsMemberOrSuspendedReadOnly` lets one read.
    """

    message = _("Join the programme first.")
    suspended_may_read = False

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        request.member = member_for_user(request.user)
        if request.member is None:
            return False
        if not request.member.is_active and not (self.suspended_may_read and request.method in SAFE_METHODS):
            # DRF raises PermissionDenied(self.message, code=self.code); this instance serves this request only.
            self.message, self.code = _("Your membership is suspended; contact support."), "suspended"
            return False
        return True


class IsMemberOrSuspendedReadOnly(IsMember):
    """IsMember, but a suspended member may still read (GET): their earnings, balance, statement and withdrawals."""

    suspended_may_read = True
