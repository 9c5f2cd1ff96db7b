import factory
from django.contrib.auth import get_user_model

from referrals.models import Member
from referrals.services import member_join

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Faker("first_name")
    password = factory.django.Password(PASSWORD)


class MemberFactory(factory.Factory):
    """Members are made through the join service, as in production: the tree stays valid."""

    class Meta:
        model = Member

    user = factory.SubFactory(UserFactory)
    sponsor = None

    @classmethod
    def _create(cls, model_class, user, sponsor=None, **kwargs):
        return member_join(user=user, sponsor=sponsor)

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        raise NotImplementedError("Members only exist in the tree; use create().")


def make_chain(length: int) -> list[Member]:
    """A root and `length - 1` members, each under the previous one."""
    chain = [MemberFactory()]
    for _ in range(length - 1):
        chain.append(MemberFactory(sponsor=chain[-1]))
    return chain
