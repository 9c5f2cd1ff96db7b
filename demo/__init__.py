"""(being built, issue #20)"""
