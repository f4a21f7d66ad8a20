from django.apps import AppConfig


class RpcTestAppConfig(AppConfig):
    name = "tests.rpc_app"
    label = "rpc_test_app"
    verbose_name = "djwamp RPC test procedures"
