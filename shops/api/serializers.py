"""Output shapes of the shops API that the member API (members/api/shop.py) shares with the public storefront reads."""

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from core.api import money_field


@extend_schema_serializer(component_name="Category")
class CategorySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


@extend_schema_serializer(component_name="Product")
class ProductSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    category = CategorySerializer(allow_null=True)
    price = money_field(read_only=False, help_text="Two decimals, as a string.")
    stock = serializers.IntegerField()
    is_in_stock = serializers.BooleanField()
    image = serializers.ImageField(allow_null=True, use_url=True)
